import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { PY_REUSE_FTP_TLS } from '../helpers/clients.js';
import { ControlClient, DataClient } from '../helpers/control-client.js';
import { startTestServer, writeHomeFile, type TestServer } from '../helpers/server.js';

// An upload is stored only when it arrived whole: the TLS stream ended with close_notify before TCP did (RFC 4217
// §12.6 / RFC 5246 §7.2.1 truncation). A cut connection, a killed client or a bare TCP FIN leaves the target as it
// was; the received bytes are kept hidden so REST + STOR can continue them.

const USER = 'alice';
const PASSWORD = 'alice-secret';
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const QUIET_DEFENDER = { defender: { threshold: 10_000 } };

/** A data connection whose TCP socket the test holds, so it can cut it under TLS (no close_notify). */
function rawDataConnect(c: ControlClient, port: number): { data: DataClient; raw: net.Socket } {
  const raw = net.connect({ port, host: '127.0.0.1' });
  raw.on('error', () => undefined);
  const session = c.tlsSession;
  const socket = tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'localhost', ...(session ? { session } : {}) });
  return { data: new DataClient(socket), raw };
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Size of the hidden upload temporary in `dir`: how many bytes the server has stored so far. */
async function storedSoFar(dir: string): Promise<number> {
  let size = 0;
  for (const n of await readdir(dir)) if (n.startsWith('.ftpsd-upload-')) size = Math.max(size, (await stat(join(dir, n)).catch(() => ({ size: 0 }))).size);
  return size;
}

function transferAudits(t: TestServer, path: string): Array<Record<string, unknown>> {
  return t.logs().filter((l) => l.audit === true && l.event === 'transfer' && l.path === path);
}

/** Visible names in a directory (upload temporaries and kept partials are hidden from clients). */
async function visible(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => !n.startsWith('.ftpsd-')).sort();
}

async function stor(c: ControlClient, verb: string, data: Buffer): Promise<number | undefined> {
  const port = await c.epsv();
  const d = c.dataConnect(port);
  const first = await c.send(verb);
  assert.equal(first.code, 150, first.text);
  await d.upload(data);
  return (await c.read())?.code;
}

describe('interrupted uploads are never committed', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ config: QUIET_DEFENDER });
  });
  after(() => t.close());

  for (const cut of ['destroy', 'fin'] as const) {
    test(`TCP ${cut === 'destroy' ? 'reset' : 'FIN'} without close_notify mid-upload: 426, no file; REST + STOR completes it`, async () => {
      const name = `cut-${cut}.bin`;
      const whole = randomBytes(1024 * 1024 + 17);
      const half = 512 * 1024;
      const c = await ControlClient.loggedIn(t.port, USER, PASSWORD);
      try {
        const port = await c.epsv();
        const { data, raw } = rawDataConnect(c, port);
        assert.equal((await c.send(`STOR ${name}`)).code, 150);
        assert.ok(await data.secured);
        data.socket.write(whole.subarray(0, half));
        await until('the first half to be stored', async () => ((await storedSoFar(t.home(USER))) >= half ? true : undefined));
        if (cut === 'destroy') raw.destroy();
        else raw.end();
        const r = await c.read();
        assert.equal(r?.code, 426, r?.text);
        assert.equal(existsSync(join(t.home(USER), name)), false, 'nothing at the target name');
        assert.ok(!(await visible(t.home(USER))).includes(name), 'the name is not listed');
        const audit = await until('the aborted upload audit', () => transferAudits(t, `/${name}`).find((l) => l.result === 'aborted'));
        assert.equal(audit.direction, 'upload');
        assert.equal(audit.code, 426);
        assert.equal(audit.bytes, half, 'the audit counts the bytes received before the cut');

        assert.equal((await c.send(`REST ${half}`)).code, 350);
        assert.equal(await stor(c, `STOR ${name}`, whole.subarray(half)), 226);
        const stored = await readFile(join(t.home(USER), name));
        assert.equal(stored.length, whole.length);
        assert.equal(sha256(stored), sha256(whole));
        const ok = await until('the resumed upload audit', () => transferAudits(t, `/${name}`).find((l) => l.result === 'ok'));
        assert.equal(ok.offset, half);
        assert.equal(ok.bytes, whole.length - half);
        assert.equal(ok.sha256, sha256(whole), 'the audit hash covers the whole file, prefix included');
      } finally {
        c.close();
      }
    });
  }

  test('a cut upload over an existing file leaves its content intact', async () => {
    const original = Buffer.from('precious content\n');
    await writeHomeFile(t, USER, 'keep.txt', original);
    const c = await ControlClient.loggedIn(t.port, USER, PASSWORD);
    try {
      const port = await c.epsv();
      const { data, raw } = rawDataConnect(c, port);
      assert.equal((await c.send('STOR keep.txt')).code, 150);
      assert.ok(await data.secured);
      data.socket.write(randomBytes(200_000));
      await until('bytes to be stored', async () => ((await storedSoFar(t.home(USER))) > 0 ? true : undefined));
      raw.destroy();
      assert.equal((await c.read())?.code, 426);
      assert.deepEqual(await readFile(join(t.home(USER), 'keep.txt')), original);
    } finally {
      c.close();
    }
  });

  test('a client killed (SIGKILL) mid-upload leaves no new file and an existing file intact', async () => {
    const original = Buffer.from('the old version\n');
    await writeHomeFile(t, USER, 'victim.bin', original);
    // Python uploads two files' worth slowly: the target exists (victim.bin) and does not (fresh.bin). It reports
    // on stdout once some blocks went out, then keeps sending until killed.
    const code = `${PY_REUSE_FTP_TLS}
import sys, time, io
class Slow(io.RawIOBase):
    def __init__(self): self.n = 0
    def readable(self): return True
    def read(self, size=-1):
        self.n += 1
        if self.n == 5:
            print('sending', flush=True)
        if self.n > 5:
            time.sleep(0.05)
        return b'x' * 8192
ftp = ftps_login(${t.port}, '${USER}', '${PASSWORD}')
ftp.storbinary('STOR ' + sys.argv[1], Slow(), blocksize=8192)
`;
    for (const name of ['victim.bin', 'fresh.bin']) {
      const child = spawn('python3', ['-c', code, name], { stdio: ['ignore', 'pipe', 'pipe'] });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      try {
        let out = '';
        await until(
          'the client to start sending',
          () => {
            out += child.stdout.read()?.toString() ?? '';
            if (child.exitCode !== null) throw new Error(`python exited early: ${child.stderr.read()?.toString() ?? ''}`);
            return out.includes('sending') ? true : undefined;
          },
          15_000,
        );
        await until('bytes to be stored', async () => ((await storedSoFar(t.home(USER))) > 0 ? true : undefined));
        child.kill('SIGKILL');
        await exited;
      } finally {
        clearTimeout(killer);
        child.kill('SIGKILL');
      }
      const audit = await until('the aborted upload audit', () => transferAudits(t, `/${name}`).find((l) => l.result === 'aborted'));
      assert.equal(audit.code, 426);
      assert.ok((audit.bytes as number) > 0, 'the audit counts the bytes received before the kill');
    }
    assert.deepEqual(await readFile(join(t.home(USER), 'victim.bin')), original);
    assert.equal(existsSync(join(t.home(USER), 'fresh.bin')), false);
  });
});

describe('resume and append', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ config: QUIET_DEFENDER });
  });
  after(() => t.close());

  test('REST n + RETR sends the file from byte n; REST past the end is 554', async () => {
    const content = randomBytes(300_000);
    await writeHomeFile(t, USER, 'big.bin', content);
    const c = await ControlClient.loggedIn(t.port, USER, PASSWORD);
    try {
      assert.equal((await c.send('REST 123456')).code, 350);
      const port = await c.epsv();
      const d = c.dataConnect(port);
      assert.equal((await c.send('RETR big.bin')).code, 150);
      assert.equal((await c.read())?.code, 226);
      assert.deepEqual(await d.received, content.subarray(123456));

      assert.equal((await c.send(`REST ${content.length + 1}`)).code, 350);
      await c.epsv();
      assert.equal((await c.send('RETR big.bin')).code, 554);
    } finally {
      c.close();
    }
  });

  test('REST n + STOR over a stored file keeps its first n bytes (resuming a finished partial upload)', async () => {
    const whole = randomBytes(200_000);
    await writeHomeFile(t, USER, 'reput.bin', whole.subarray(0, 150_000));
    const c = await ControlClient.loggedIn(t.port, USER, PASSWORD);
    try {
      assert.equal((await c.send('SIZE reput.bin')).text, '213 150000');
      assert.equal((await c.send('REST 150000')).code, 350);
      assert.equal(await stor(c, 'STOR reput.bin', whole.subarray(150_000)), 226);
      assert.equal(sha256(await readFile(join(t.home(USER), 'reput.bin'))), sha256(whole));
      assert.equal(transferAudits(t, '/reput.bin').at(-1)?.sha256, sha256(whole));
    } finally {
      c.close();
    }
  });

  test('two sessions uploading the same name at once: the file is one of the two, whole', async () => {
    const bodies = [randomBytes(2 * 1024 * 1024), randomBytes(2 * 1024 * 1024 + 1)];
    const clients = await Promise.all(bodies.map(() => ControlClient.loggedIn(t.port, USER, PASSWORD)));
    try {
      const codes = await Promise.all(clients.map((c, i) => stor(c, 'STOR race.bin', bodies[i]!)));
      assert.deepEqual(codes, [226, 226]);
      const stored = sha256(await readFile(join(t.home(USER), 'race.bin')));
      assert.ok(bodies.some((b) => sha256(b) === stored), 'the stored file is one upload, not a mix');
      assert.deepEqual((await readdir(t.home(USER))).filter((n) => n.includes('race')), ['race.bin']);
    } finally {
      for (const c of clients) c.close();
    }
  });

  test('APPE appends to an existing file and creates a missing one', async () => {
    await writeHomeFile(t, USER, 'log.txt', 'line 1\n');
    const c = await ControlClient.loggedIn(t.port, USER, PASSWORD);
    try {
      assert.equal(await stor(c, 'APPE log.txt', Buffer.from('line 2\n')), 226);
      assert.equal(await stor(c, 'APPE log.txt', Buffer.from('line 3\n')), 226);
      assert.equal(await readFile(join(t.home(USER), 'log.txt'), 'utf8'), 'line 1\nline 2\nline 3\n');
      const audit = transferAudits(t, '/log.txt').at(-1);
      assert.equal(audit?.sha256, sha256(Buffer.from('line 1\nline 2\nline 3\n')));
      assert.equal(await stor(c, 'APPE new.txt', Buffer.from('first\n')), 226);
      assert.equal(await readFile(join(t.home(USER), 'new.txt'), 'utf8'), 'first\n');
    } finally {
      c.close();
    }
  });
});
