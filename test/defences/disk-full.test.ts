import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// Uploads that the file system cannot take: a full disk answers 452 (RFC 959: insufficient storage space) and an
// unwritable directory a 55x refusal; neither leaves a partial file where the client would see it. Tests run as root,
// for whom chmod 0555 stops nothing, so both cases use small tmpfs mounts (full; read-only) inside the user's home.

const ALICE = { name: 'alice', password: 'alice-secret' };

function tryMount(dir: string, options: string): string | null {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'pipe' });
    return null;
  } catch (err) {
    return (err as Error).message.split('\n')[0] ?? 'mount failed';
  }
}

function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'pipe' });
  } catch {
    // Not mounted.
  }
}

describe('uploads the file system cannot take', () => {
  let t: TestServer;
  let full: string;
  let readOnly: string;
  let mountProblem: string | null = null;

  before(async () => {
    t = await startTestServer({ users: [ALICE], config: { defender: { threshold: 1_000 } } });
    full = join(t.home('alice'), 'small');
    readOnly = join(t.home('alice'), 'readonly');
    await mkdir(full);
    await mkdir(readOnly);
    mountProblem = tryMount(full, 'size=1m,mode=0777') ?? tryMount(readOnly, 'ro,size=1m,mode=0777');
    if (mountProblem !== null) console.log(`# disk-full cases skipped: cannot mount a tmpfs (${mountProblem})`);
  });
  after(async () => {
    unmount(full);
    unmount(readOnly);
    await t.close();
  });

  async function upload(path: string, bytes: Buffer): Promise<{ first: number; final: number | null; text: string }> {
    const c = await ControlClient.loggedIn(t.port, ALICE.name, ALICE.password);
    try {
      const port = await c.epsv();
      const data = c.dataConnect(port);
      const first = await c.send(`STOR ${path}`);
      if (first.code !== 150) {
        data.socket.destroy();
        return { first: first.code, final: null, text: first.text };
      }
      void data.upload(bytes).catch(() => undefined);
      const final = await c.read(15_000);
      data.socket.destroy();
      assert.equal((await c.send('NOOP')).code, 200, 'the session survives');
      return { first: first.code, final: final?.code ?? null, text: final?.text ?? '' };
    } finally {
      c.close();
    }
  }

  it('a full disk answers 452 and leaves no partial file at the target', async (ctx) => {
    if (mountProblem !== null) return ctx.skip(`cannot mount a tmpfs: ${mountProblem}`);
    const r = await upload('small/big.bin', randomBytes(3 * 1024 * 1024));
    assert.equal(r.first, 150);
    assert.equal(r.final, 452, r.text);
    assert.equal(existsSync(join(full, 'big.bin')), false);
    const visible = (await readdir(full)).filter((n) => !n.startsWith('.'));
    assert.deepEqual(visible, [], 'nothing visible in the directory');
  });

  it('a read-only directory refuses the upload with 55x and creates nothing', async (ctx) => {
    if (mountProblem !== null) return ctx.skip(`cannot mount a tmpfs: ${mountProblem}`);
    const r = await upload('readonly/file.bin', randomBytes(10_000));
    const code = r.final ?? r.first;
    assert.ok(code === 550 || code === 553, `${code} ${r.text}`);
    assert.deepEqual(await readdir(readOnly), []);
  });
});
