import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCurl, type RunResult } from '../helpers/clients.js';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// curl (OpenSSL) as a user runs it: explicit FTPS (--ssl-reqd), EPSV, data connections resuming the control
// session. Every file goes up and comes back with the same SHA-256; the audit record of each upload carries that hash
// and the TLS facts of its data connection.

const USER = 'alice';
const PASSWORD = 'alice-secret';
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const SIZES = [
  ['empty', 0],
  ['one-byte', 1],
  ['one-mib', 1024 * 1024],
  ['sixty-four-mib', 64 * 1024 * 1024],
] as const;
const VERSIONS = [
  { name: 'TLSv1.2', args: ['--tlsv1.2', '--tls-max', '1.2'] },
  { name: 'TLSv1.3', args: ['--tlsv1.3'] },
] as const;

describe('curl round trips', () => {
  let t: TestServer;
  let local: string;
  const files = new Map<string, Buffer>();
  let url: (path: string) => string;
  const curl = (args: string[], timeoutMs?: number): Promise<RunResult> =>
    runCurl(['--ssl-reqd', '-k', '--user', `${USER}:${PASSWORD}`, ...args], timeoutMs === undefined ? {} : { timeoutMs });

  before(async () => {
    t = await startTestServer();
    url = (path) => `ftp://127.0.0.1:${t.port}/${path}`;
    local = await mkdtemp(join(tmpdir(), 'ftpsd-curl-'));
    for (const [name, size] of SIZES) {
      const body = randomBytes(size);
      files.set(name, body);
      await writeFile(join(local, name), body);
    }
  });
  after(async () => {
    await t.close();
    await rm(local, { recursive: true, force: true });
  });

  function lastTransfer(path: string, direction: 'upload' | 'download'): Record<string, unknown> | undefined {
    return t.logs().filter((l) => l.audit === true && l.event === 'transfer' && l.path === path && l.direction === direction).at(-1);
  }

  for (const version of VERSIONS) {
    for (const [name, size] of SIZES) {
      test(`${version.name}: ${name} (${size} bytes) up and down with an identical SHA-256`, async () => {
        const body = files.get(name)!;
        const remote = `${version.name}-${name}.bin`;
        const up = await curl([...version.args, '-T', join(local, name), url(remote)], 60_000);
        assert.equal(up.code, 0, up.stderr);
        const stored = await readFile(join(t.home(USER), remote));
        assert.equal(sha256(stored), sha256(body));

        const audit = lastTransfer(`/${remote}`, 'upload');
        assert.ok(audit, 'an upload audit record');
        assert.equal(audit.sha256, sha256(body));
        assert.equal(audit.bytes, size);
        assert.equal(audit.tlsVersion, version.name);
        assert.equal(typeof audit.cipher, 'string');
        assert.notEqual(audit.cipher, '');
        assert.equal(audit.resumed, true);
        assert.equal(audit.result, 'ok');

        const out = join(local, `${remote}.down`);
        const down = await curl([...version.args, '-o', out, url(remote)], 60_000);
        assert.equal(down.code, 0, down.stderr);
        assert.equal(sha256(await readFile(out)), sha256(body));
        const dl = lastTransfer(`/${remote}`, 'download');
        assert.equal(dl?.bytes, size);
        assert.equal(dl?.resumed, true);
        assert.equal(dl?.tlsVersion, version.name);
        await rm(out);
      });
    }
  }

  test('HASH of every uploaded file matches its content', async () => {
    const c = await ControlClient.connect(t.port);
    try {
      await c.read();
      assert.equal((await c.login(USER, PASSWORD)).code, 230);
      for (const [name, size] of SIZES) {
        const remote = `TLSv1.3-${name}.bin`;
        const r = await c.send(`HASH ${remote}`);
        assert.equal(r.text, `213 SHA-256 0-${Math.max(0, size - 1)} ${sha256(files.get(name)!)} ${remote}`);
      }
    } finally {
      c.close();
    }
  });

  test('-Q "MKD x" creates a directory; LIST and NLST (-l) show what was uploaded into it', async () => {
    const mk = await curl(['-Q', 'MKD made by curl', '-T', join(local, 'one-byte'), url('made%20by%20curl/inside.bin')]);
    assert.equal(mk.code, 0, mk.stderr);
    assert.equal((await stat(join(t.home(USER), 'made by curl'))).isDirectory(), true);
    const list = await curl([url('made%20by%20curl/')]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^-rw.*\s1 \w{3} \d{2} .* inside\.bin\r?$/m);
    const nlst = await curl(['-l', url('made%20by%20curl/')]);
    assert.deepEqual(nlst.stdout.split(/\r?\n/).filter((l) => l !== ''), ['inside.bin']);
    const del = await curl(['-Q', '-DELE made by curl/inside.bin', '-Q', '-RMD made by curl', url('')]);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(existsSync(join(t.home(USER), 'made by curl')), false);
    const bad = await curl(['-Q', 'RMD no such dir', url('')]);
    assert.notEqual(bad.code, 0, 'a refused quote command fails the curl run');
  });

  test('an upload continued with -C - -T sends only the rest, and the file is whole', async () => {
    const body = files.get('one-mib')!;
    await writeFile(join(t.home(USER), 'continued.bin'), body.subarray(0, 300_000));
    const r = await curl(['-C', '-', '-T', join(local, 'one-mib'), url('continued.bin')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sha256(await readFile(join(t.home(USER), 'continued.bin'))), sha256(body));
    const up = lastTransfer('/continued.bin', 'upload');
    assert.equal(up?.bytes, body.length - 300_000, 'only the missing part travelled');
    assert.equal(up?.sha256, sha256(body));
  });

  for (const version of VERSIONS) {
    test(`${version.name}: an interrupted download continued with -C - (REST) yields the whole file`, async () => {
      const body = files.get('sixty-four-mib')!;
      const out = join(local, `resume-${version.name}`);
      // Slow enough to be cut by --max-time with part of the file on disk.
      const cut = await curl([...version.args, '--limit-rate', '4M', '--max-time', '3', '-o', out, url(`${version.name}-sixty-four-mib.bin`)]);
      assert.equal(cut.code, 28, `curl should have timed out: ${cut.stderr}`);
      const partial = (await stat(out)).size;
      assert.ok(partial > 0 && partial < body.length, `partial size ${partial}`);
      const rest = await curl([...version.args, '-C', '-', '-o', out, url(`${version.name}-sixty-four-mib.bin`)], 60_000);
      assert.equal(rest.code, 0, rest.stderr);
      assert.equal(sha256(await readFile(out)), sha256(body));
      const dl = lastTransfer(`/${version.name}-sixty-four-mib.bin`, 'download');
      assert.equal(dl?.offset, partial, 'curl asked for the rest with REST');
      assert.equal(dl?.bytes, body.length - partial);
      await rm(out);
    });
  }
});
