import assert from 'node:assert/strict';
import { constants, readlinkSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Descriptor } from '../../src/storage/descriptor.js';

const { O_RDWR, O_RDONLY, O_CREAT, O_EXCL } = constants;
/** Whether descriptor `fd` is open on `path` (after a close the number may already name something else). */
function holds(fd: number, path: string): boolean {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`) === path;
  } catch {
    return false;
  }
}

describe('Descriptor', () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ftpsd-descriptor-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('closes only once the writes and the fsync it started have completed', async () => {
    const path = join(dir, 'pending');
    const file = Descriptor.open(path, O_RDWR | O_CREAT | O_EXCL, 0o600);
    const fd = file.fd;
    const data = Buffer.alloc(8 * 1024 * 1024, 'x');
    const order: string[] = [];
    const write = file.writev([data, data], 0).then((n) => order.push(`write ${n}`));
    const sync = file.sync().then(() => order.push('sync'));
    const closed = file.close().then(() => order.push('close'));
    // Asked to close with work in flight: the number stays open (and cannot be reused) until the work is done.
    assert.ok(holds(fd, path));
    await Promise.all([write, sync, closed]);
    assert.ok(!holds(fd, path));
    assert.deepEqual(order.slice(-1), ['close']);
    assert.ok(order.includes(`write ${2 * data.length}`));
    assert.equal((await readFile(path)).length, 2 * data.length);
  });

  it('closes at once when idle, exactly once however often asked, and refuses use afterwards', async () => {
    const path = join(dir, 'idle');
    const file = Descriptor.open(path, O_RDWR | O_CREAT, 0o600);
    const fd = file.fd;
    const first = file.close();
    // Idle: closed synchronously, before the promise is awaited.
    assert.ok(!holds(fd, path));
    assert.equal(file.close(), first);
    await first;
    assert.ok(file.closed);
    assert.throws(() => file.stat(), { code: 'EBADF' });
    assert.throws(() => file.chmod(0o600), { code: 'EBADF' });
    await assert.rejects(file.write(Buffer.from('x'), 0, 1, 0), { code: 'EBADF' });
    await assert.rejects(file.sync(), { code: 'EBADF' });
    await assert.rejects(file.truncate(0), { code: 'EBADF' });
  });

  it('opens synchronously, with the errno error of open(2)', async () => {
    assert.throws(() => Descriptor.open(join(dir, 'missing', 'x'), O_RDONLY), { code: 'ENOENT' });
    await Descriptor.open(join(dir, 'exclusive'), O_RDWR | O_CREAT | O_EXCL, 0o600).close();
    assert.throws(() => Descriptor.open(join(dir, 'exclusive'), O_RDWR | O_CREAT | O_EXCL, 0o600), { code: 'EEXIST' });
  });

  it('writes, truncates, changes mode and stats', async () => {
    const file = Descriptor.open(join(dir, 'meta'), O_RDWR | O_CREAT, 0o600);
    try {
      assert.equal(await file.write(Buffer.from('hello world'), 0, 11, 0), 11);
      await file.truncate(5);
      file.chmod(0o640);
      const st = file.stat();
      assert.equal(st.size, 5);
      assert.equal(st.mode & 0o777, 0o640);
    } finally {
      await file.close();
    }
    assert.equal(await readFile(join(dir, 'meta'), 'utf8'), 'hello');
  });

  it('a read stream reads from its start and closes the descriptor when it ends or is destroyed', async () => {
    const content = Buffer.alloc(200_000);
    for (let i = 0; i < content.length; i++) content[i] = i % 253;
    const path = join(dir, 'read');
    await writeFile(path, content);

    const whole = Descriptor.open(path, O_RDONLY);
    const stream = whole.createReadStream({ start: 1000, highWaterMark: 16 * 1024, autoClose: true });
    assert.ok((await readAll(stream)).equals(content.subarray(1000)));
    await new Promise<void>((resolve) => (stream.closed ? resolve() : stream.once('close', () => resolve())));
    assert.ok(whole.closed);
    assert.ok(!holds(whole.fd, path));

    const early = Descriptor.open(path, O_RDONLY);
    const cut = early.createReadStream({ start: 0, highWaterMark: 4096, autoClose: true });
    cut.once('data', () => cut.destroy());
    await new Promise<void>((resolve) => cut.once('close', () => resolve()));
    assert.ok(early.closed);
    assert.ok(!holds(early.fd, path));
    // Closing again, as an owner would after the stream, changes nothing.
    await early.close();
  });
});

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}
