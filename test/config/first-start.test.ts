import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { runCurl } from '../helpers/clients.js';
import { ControlClient } from '../helpers/control-client.js';
import { passiveRange } from '../helpers/server.js';
import { openStore } from '../../src/store/open-store.js';
import { loadPartners } from '../../src/store/partner-repo.js';

// First start of `ftpsd serve` in an empty directory: a demo user with a password shown once, a first admin account
// with a one-time password and the admin URL, a self-signed certificate generated and reused on the next start.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'ftpsd.js');
const START_TIMEOUT_MS = 15_000;

interface Running {
  child: ChildProcess;
  port: number;
  stderr: () => string;
  stdout: () => string;
  exited: Promise<number | null>;
}

const children = new Set<ChildProcess>();

async function serve(dir: string): Promise<Running> {
  const child = spawn(process.execPath, [BIN, 'serve', '--config', 'ftpsd.yaml'], { cwd: dir, env: { ...process.env, FTPSD_CONFIG: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    children.delete(child);
    resolve(code);
  }));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), START_TIMEOUT_MS);
    const check = () => {
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stderr!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}: ${err}`));
    });
  });
  return { child, port, stderr: () => err, stdout: () => out, exited };
}

async function stop(r: Running): Promise<void> {
  r.child.kill('SIGTERM');
  const code = await Promise.race([r.exited, new Promise<'hung'>((res) => setTimeout(() => res('hung'), 10_000).unref())]);
  if (code === 'hung') {
    r.child.kill('SIGKILL');
    assert.fail('serve did not stop on SIGTERM');
  }
}

/** Polls `probe` (what serve printed so far) until it matches, for at most 10 s. */
async function waitFor(probe: () => RegExpExecArray | null): Promise<RegExpExecArray> {
  for (let i = 0; i < 200; i++) {
    const m = probe();
    if (m !== null) return m;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail('expected output did not appear');
}

async function presentedFingerprint(port: number): Promise<string> {
  const c = await ControlClient.connect(port);
  try {
    await c.read();
    await c.authTls();
    return (c.socket as tls.TLSSocket).getPeerCertificate().fingerprint256;
  } finally {
    c.close();
  }
}

describe('first start of ftpsd serve', () => {
  let dir: string;

  before(async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'dist/ is missing: build with npx tsc -p tsconfig.json');
    dir = await mkdtemp(join(tmpdir(), 'ftpsd-first-'));
    await writeFile(join(dir, 'ftpsd.yaml'), stringify({
      listen: { host: '127.0.0.1', port: 0 },
      pasv: passiveRange(),
      users: { file: 'config/users.yaml', demoHome: 'data/demo' },
      log: { level: 'info' },
      admin: { host: '127.0.0.1', port: 0 },
    }));
  });

  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('creates a demo user and a first admin, each with a password shown once, and a certificate reused on the next start', async () => {
    const first = await serve(dir);
    let password: string;
    let fingerprint: string;
    try {
      const shown = /Password: (\S+)/.exec(first.stderr());
      assert.ok(shown, `a password is printed on stderr: ${first.stderr()}`);
      password = shown[1]!;
      assert.equal(first.stderr().split(password).length - 1, 1, 'printed once');
      assert.ok(!first.stdout().includes(password), 'the password is not in the log');

      const store = await openStore({ path: join(dir, 'data', 'ftpsd.db'), url: '' });
      try {
        const demo = (await loadPartners(store.db)).users.demo;
        assert.match(demo?.passwordHash ?? '', /^\$argon2id\$/, 'the store holds the hash, not the password');
        assert.deepEqual(demo?.permissions, { '/': ['list', 'download', 'upload', 'overwrite', 'delete', 'rename', 'mkdir'] });
      } finally {
        await store.close();
      }
      assert.equal(existsSync(join(dir, 'config', 'users.yaml')), false, 'no users file is written any more');

      const certPem = await readFile(join(dir, 'certs', 'self-signed.crt'), 'utf8');
      assert.ok(existsSync(join(dir, 'certs', 'self-signed.key')));
      assert.equal((await stat(join(dir, 'certs', 'self-signed.key'))).mode & 0o077, 0, 'private key readable by the owner only');
      fingerprint = new X509Certificate(certPem).fingerprint256;
      assert.equal(await presentedFingerprint(first.port), fingerprint, 'the server presents the generated certificate');

      const curl = await runCurl(['--ssl-reqd', '-k', '-u', `demo:${password}`, `ftp://127.0.0.1:${first.port}/`]);
      assert.equal(curl.code, 0, `curl login with the printed password: ${curl.stderr}`);
      const wrong = await runCurl(['--ssl-reqd', '-k', '-u', 'demo:not-it', `ftp://127.0.0.1:${first.port}/`]);
      assert.equal(wrong.code, 67);

      // The admin URL and the first admin's one-time password, printed like the demo user's.
      const adminLine = await waitFor(() => /admin on (https:\/\/127\.0\.0\.1:(\d+)\/)/.exec(first.stderr()));
      const once = await waitFor(() => /One-time password: (\S+)/.exec(first.stderr()));
      assert.ok(!first.stdout().includes(once[1]!), 'the admin password is not in the log');
      const login = await runCurl(['-k', '-H', 'content-type: application/json', '-d', JSON.stringify({ name: 'admin', password: once[1] }), `${adminLine[1]}api/v1/auth/login`]);
      assert.equal(login.code, 0, login.stderr);
      const answer = JSON.parse(login.stdout) as { token?: string; account?: { role: string; mustChangePassword: boolean } };
      assert.deepEqual(answer.account && { role: answer.account.role, must: answer.account.mustChangePassword }, { role: 'admin', must: true }, login.stdout);
      const page = await runCurl(['-k', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', adminLine[1]!]);
      assert.match(page.stdout, /^302 .*\/login/, 'the web admin asks for a login');
    } finally {
      await stop(first);
    }

    const second = await serve(dir);
    try {
      assert.doesNotMatch(second.stderr(), /Password/, 'no new password on the second start');
      await waitFor(() => /admin on https:/.exec(second.stderr()));
      assert.doesNotMatch(second.stderr(), /One-time password/, 'no new admin on the second start');
      assert.equal(new X509Certificate(await readFile(join(dir, 'certs', 'self-signed.crt'), 'utf8')).fingerprint256, fingerprint);
      assert.equal(await presentedFingerprint(second.port), fingerprint, 'same certificate presented');
      const curl = await runCurl(['--ssl-reqd', '-k', '-u', `demo:${password}`, `ftp://127.0.0.1:${second.port}/`]);
      assert.equal(curl.code, 0, `the first password still works: ${curl.stderr}`);
    } finally {
      await stop(second);
    }
  });
});
