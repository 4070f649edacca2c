import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { FtpError } from '../../src/errors.js';
import type { StorageSession, Upload } from '../../src/storage/backend.js';
import { DigestPool } from '../../src/storage/digest-pool.js';
import { createLocalStorage } from '../../src/storage/local-backend.js';

// Storage options every test shares; digests run on a worker thread, as in the server.
const limits = { maxPathBytes: 4096, maxNameBytes: 255, digests: new DigestPool(1, 64 * 1024) };
const CHUNK = 64 * 1024;

function pattern(length: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed) % 256;
  return b;
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Sends `data` in several chunks, as a data connection would, and ends the stream. */
async function send(upload: Upload, data: Buffer): Promise<void> {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += 10_000) parts.push(data.subarray(i, i + 10_000));
  await pipeline(Readable.from(parts), upload.stream);
}

/** Writes without ending, and waits until the bytes reached the file. */
async function writeSome(stream: Writable, data: Buffer): Promise<void> {
  await new Promise<void>((resolve, reject) => stream.write(data, (err) => (err ? reject(err) : resolve())));
}

async function rejectsFtp(promise: Promise<unknown>, code: number, reason?: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => err instanceof FtpError && err.code === code && (reason === undefined || err.reason === reason));
}

describe('local uploads', () => {
  let root: string;
  let home: string;
  let storage: StorageSession;
  const hidden = async (dir = home) => (await readdir(dir)).filter((n) => n.startsWith('.ftpsd-'));

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'ftpsd-upload-'));
    home = join(root, 'home');
    storage = createLocalStorage({ home, ...limits, atomicUploads: true });
  });

  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('a new file is invisible until commit, then complete with its SHA-256', async () => {
    const data = pattern(300_000, 1);
    const upload = await storage.openUpload('/new.bin', { kind: 'replace' }, CHUNK);
    await writeSome(upload.stream, data.subarray(0, 100_000));
    assert.equal(existsSync(join(home, 'new.bin')), false);
    assert.deepEqual((await storage.list('/')).map((e) => e.name), []);
    await rejectsFtp(storage.stat('/new.bin'), 550, 'not_found');
    upload.stream.end(data.subarray(100_000));
    await new Promise((r) => upload.stream.on('finish', r));
    const result = await upload.commit();
    assert.deepEqual(result, { bytes: data.length, size: data.length, sha256: sha(data), storagePath: join(home, 'new.bin') });
    assert.ok((await readFile(join(home, 'new.bin'))).equals(data));
    assert.deepEqual(await hidden(), []);
  });

  it('replacing keeps the old content visible during the upload and keeps its permission bits', async () => {
    await writeFile(join(home, 'doc.txt'), 'old content');
    await chmod(join(home, 'doc.txt'), 0o600);
    const upload = await storage.openUpload('/doc.txt', { kind: 'replace' }, CHUNK);
    await writeSome(upload.stream, Buffer.from('new '));
    assert.equal(await readFile(join(home, 'doc.txt'), 'utf8'), 'old content');
    assert.deepEqual((await storage.list('/')).map((e) => e.name).filter((n) => n.startsWith('.')), []);
    upload.stream.end('content');
    await new Promise((r) => upload.stream.on('finish', r));
    await upload.commit();
    assert.equal(await readFile(join(home, 'doc.txt'), 'utf8'), 'new content');
    assert.equal((await stat(join(home, 'doc.txt'))).mode & 0o777, 0o600);
  });

  it('abort leaves the old content and no temporary', async () => {
    await writeFile(join(home, 'keep.txt'), 'precious');
    const upload = await storage.openUpload('/keep.txt', { kind: 'replace' }, CHUNK);
    await writeSome(upload.stream, pattern(50_000, 2));
    assert.equal((await hidden()).length, 1);
    await upload.abort(false);
    assert.equal(await readFile(join(home, 'keep.txt'), 'utf8'), 'precious');
    assert.deepEqual(await hidden(), []);
    await upload.abort(false); // idempotent
  });

  it('abort(keepPartial) then REST + STOR continues the partial into the full, correct file', async () => {
    const full = pattern(1_000_000, 3);
    await writeFile(join(home, 'big.iso'), 'older version');
    const first = await storage.openUpload('/big.iso', { kind: 'replace' }, CHUNK);
    await writeSome(first.stream, full.subarray(0, 600_000));
    // What a pipeline does when the data connection breaks.
    first.stream.on('error', () => undefined);
    first.stream.destroy(new Error('data connection reset'));
    await first.abort(true);
    assert.equal(await readFile(join(home, 'big.iso'), 'utf8'), 'older version');
    assert.deepEqual(await hidden(), ['.ftpsd-partial.big.iso']);
    assert.ok(!(await storage.list('/')).some((e) => e.name.startsWith('.ftpsd')));

    // The client resumes from a smaller offset than was kept: the partial is cut there.
    const offset = 512_000;
    const second = await storage.openUpload('/big.iso', { kind: 'resume', offset }, CHUNK);
    assert.equal(await readFile(join(home, 'big.iso'), 'utf8'), 'older version');
    await send(second, full.subarray(offset));
    const result = await second.commit();
    assert.deepEqual(result, { bytes: full.length - offset, size: full.length, sha256: sha(full), storagePath: join(home, 'big.iso') });
    assert.ok((await readFile(join(home, 'big.iso'))).equals(full));
    assert.equal(await storage.sha256('/big.iso'), sha(full));
    assert.deepEqual(await hidden(), []);
  });

  it('a whole upload (no REST) removes the partial an earlier attempt kept', async () => {
    const first = await storage.openUpload('/again.bin', { kind: 'replace' }, CHUNK);
    await writeSome(first.stream, Buffer.from('half of it'));
    await first.abort(true);
    assert.deepEqual(await hidden(), ['.ftpsd-partial.again.bin']);
    const whole = await storage.openUpload('/again.bin', { kind: 'replace' }, CHUNK);
    await send(whole, Buffer.from('all of it, sent again'));
    await whole.commit();
    assert.equal(await readFile(join(home, 'again.bin'), 'utf8'), 'all of it, sent again');
    assert.deepEqual(await hidden(), []);
  });

  it('REST + STOR without a partial continues the stored file', async () => {
    const full = pattern(200_000, 4);
    await writeFile(join(home, 'stored.bin'), Buffer.concat([full.subarray(0, 150_000), Buffer.from('garbage after the offset')]));
    const upload = await storage.openUpload('/stored.bin', { kind: 'resume', offset: 150_000 }, CHUNK);
    await send(upload, full.subarray(150_000));
    assert.equal((await upload.commit()).sha256, sha(full));
    assert.ok((await readFile(join(home, 'stored.bin'))).equals(full));
  });

  it('REST beyond what is kept is refused with 554 and leaves nothing behind', async () => {
    await writeFile(join(home, 'short.bin'), 'abc');
    await rejectsFtp(storage.openUpload('/short.bin', { kind: 'resume', offset: 4 }, CHUNK), 554, 'invalid_rest');
    await rejectsFtp(storage.openUpload('/absent.bin', { kind: 'resume', offset: 1 }, CHUNK), 554, 'invalid_rest');
    await rejectsFtp(storage.openUpload('/short.bin', { kind: 'resume', offset: -1 }, CHUNK), 554, 'invalid_rest');
    assert.deepEqual(await hidden(), []);
    assert.equal(await readFile(join(home, 'short.bin'), 'utf8'), 'abc');
  });

  it('a kept partial too short for the offset stays for a later resume', async () => {
    const first = await storage.openUpload('/p.bin', { kind: 'replace' }, CHUNK);
    await writeSome(first.stream, Buffer.from('12345'));
    await first.abort(true);
    await rejectsFtp(storage.openUpload('/p.bin', { kind: 'resume', offset: 6 }, CHUNK), 554);
    assert.deepEqual(await hidden(), ['.ftpsd-partial.p.bin']);
    const second = await storage.openUpload('/p.bin', { kind: 'resume', offset: 5 }, CHUNK);
    await send(second, Buffer.from('678'));
    assert.equal((await second.commit()).size, 8);
    assert.equal(await readFile(join(home, 'p.bin'), 'utf8'), '12345678');
  });

  it('append keeps the old bytes and hashes the whole file; an aborted append changes nothing', async () => {
    await writeFile(join(home, 'log.txt'), 'line 1\n');
    const upload = await storage.openUpload('/log.txt', { kind: 'append' }, CHUNK);
    await send(upload, Buffer.from('line 2\n'));
    assert.deepEqual(await upload.commit(), { bytes: 7, size: 14, sha256: sha(Buffer.from('line 1\nline 2\n')), storagePath: join(home, 'log.txt') });
    assert.equal(await readFile(join(home, 'log.txt'), 'utf8'), 'line 1\nline 2\n');

    const failed = await storage.openUpload('/log.txt', { kind: 'append' }, CHUNK);
    await writeSome(failed.stream, Buffer.from('half a li'));
    await failed.abort(false);
    assert.equal(await readFile(join(home, 'log.txt'), 'utf8'), 'line 1\nline 2\n');

    const fresh = await storage.openUpload('/new-log.txt', { kind: 'append' }, CHUNK);
    await send(fresh, Buffer.from('first'));
    assert.equal((await fresh.commit()).size, 5);
    assert.deepEqual(await hidden(), []);
  });

  it('stores a 0-byte upload', async () => {
    const upload = await storage.openUpload('/empty.txt', { kind: 'replace' }, CHUNK);
    upload.stream.end();
    await new Promise((r) => upload.stream.on('finish', r));
    assert.deepEqual(await upload.commit(), { bytes: 0, size: 0, sha256: sha(Buffer.alloc(0)), storagePath: join(home, 'empty.txt') });
    assert.equal((await stat(join(home, 'empty.txt'))).size, 0);
  });

  it('stores UTF-8 and space names', async () => {
    await mkdir(join(home, 'Überweisungen 2026'));
    const path = storage.resolve('/Überweisungen 2026', 'März bericht 日本.csv');
    const upload = await storage.openUpload(path, { kind: 'replace' }, CHUNK);
    await send(upload, Buffer.from('a;b\n'));
    await upload.commit();
    assert.equal(await readFile(join(home, 'Überweisungen 2026', 'März bericht 日本.csv'), 'utf8'), 'a;b\n');
    assert.deepEqual((await storage.list('/Überweisungen 2026')).map((e) => e.name), ['März bericht 日本.csv']);
  });

  it('refuses a directory target, at open and when one appears before commit, leaving no temporary', async () => {
    await mkdir(join(home, 'adir'));
    await rejectsFtp(storage.openUpload('/adir', { kind: 'replace' }, CHUNK), 550, 'is_dir');
    await rejectsFtp(storage.openUpload('/no-dir/x', { kind: 'replace' }, CHUNK), 550);
    const upload = await storage.openUpload('/later', { kind: 'replace' }, CHUNK);
    await send(upload, Buffer.from('data'));
    await mkdir(join(home, 'later'));
    await writeFile(join(home, 'later', 'child'), '');
    await rejectsFtp(upload.commit(), 550);
    assert.deepEqual(await hidden(), []);
    assert.ok((await stat(join(home, 'later'))).isDirectory());
  });

  it('commit before the stream finished is refused and stores nothing', async () => {
    const upload = await storage.openUpload('/unfinished', { kind: 'replace' }, CHUNK);
    await writeSome(upload.stream, Buffer.from('part'));
    await rejectsFtp(upload.commit(), 451, 'upload_incomplete');
    assert.equal(existsSync(join(home, 'unfinished')), false);
    assert.deepEqual(await hidden(), []);
  });

  it('writes through a symlink to a file inside the home', async () => {
    await writeFile(join(home, 'target.txt'), 'old');
    await symlink('target.txt', join(home, 'link.txt'));
    const upload = await storage.openUpload('/link.txt', { kind: 'replace' }, CHUNK);
    await send(upload, Buffer.from('via link'));
    await upload.commit();
    assert.equal(await readFile(join(home, 'target.txt'), 'utf8'), 'via link');
    assert.equal(await readFile(join(home, 'link.txt'), 'utf8'), 'via link');
  });

  it('without atomicUploads writes the target in place, and still hashes', async () => {
    const inPlace = createLocalStorage({ home, ...limits, atomicUploads: false, fsyncOnCommit: false });
    const upload = await inPlace.openUpload('/direct.bin', { kind: 'replace' }, CHUNK);
    await writeSome(upload.stream, Buffer.from('visible '));
    assert.equal(await readFile(join(home, 'direct.bin'), 'utf8'), 'visible ');
    upload.stream.end('now');
    await new Promise((r) => upload.stream.on('finish', r));
    assert.equal((await upload.commit()).sha256, sha(Buffer.from('visible now')));
    assert.deepEqual(await hidden(), []);

    const append = await inPlace.openUpload('/direct.bin', { kind: 'append' }, CHUNK);
    await send(append, Buffer.from('!'));
    assert.deepEqual(await append.commit(), { bytes: 1, size: 12, sha256: sha(Buffer.from('visible now!')), storagePath: join(home, 'direct.bin') });

    const resume = await inPlace.openUpload('/direct.bin', { kind: 'resume', offset: 8 }, CHUNK);
    await send(resume, Buffer.from('later'));
    assert.equal((await resume.commit()).sha256, sha(Buffer.from('visible later')));
    assert.equal(await readFile(join(home, 'direct.bin'), 'utf8'), 'visible later');
    await rejectsFtp(inPlace.openUpload('/direct.bin', { kind: 'resume', offset: 100 }, CHUNK), 554);
  });
});

describe('local uploads with small files written on the event loop (storage.syncIoMaxBytes)', () => {
  let root: string;
  let home: string;
  let storage: StorageSession;
  const SYNC_MAX = 16 * 1024;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'ftpsd-upload-sync-'));
    home = join(root, 'home');
    storage = createLocalStorage({ home, ...limits, atomicUploads: true, syncIoMaxBytes: SYNC_MAX });
  });

  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('files below, at and above the limit, in one chunk or several, are stored whole with their SHA-256', async () => {
    for (const length of [0, 1, 4096, SYNC_MAX, SYNC_MAX + 1, 300_000]) {
      const data = pattern(length, length % 251);
      const upload = await storage.openUpload(`/f${length}.bin`, { kind: 'replace' }, CHUNK);
      await send(upload, data);
      const result = await upload.commit();
      assert.deepEqual(result, { bytes: length, size: length, sha256: sha(data), storagePath: join(home, `f${length}.bin`) }, `${length} bytes`);
      assert.ok((await readFile(join(home, `f${length}.bin`))).equals(data), `${length} bytes on disk`);
    }
  });

  it('an aborted upload keeps every byte it had received in its partial, and REST + STOR completes it', async () => {
    const full = pattern(10_000, 9);
    const first = await storage.openUpload('/held.bin', { kind: 'replace' }, CHUNK);
    // Below the limit: accepted, and still held in memory when the connection breaks.
    await writeSome(first.stream, full.subarray(0, 3_000));
    first.stream.on('error', () => undefined);
    first.stream.destroy(new Error('data connection reset'));
    await first.abort(true);
    assert.ok((await readFile(join(home, '.ftpsd-partial.held.bin'))).equals(full.subarray(0, 3_000)));
    const second = await storage.openUpload('/held.bin', { kind: 'resume', offset: 3_000 }, CHUNK);
    await send(second, full.subarray(3_000));
    assert.equal((await second.commit()).sha256, sha(full));
    assert.ok((await readFile(join(home, 'held.bin'))).equals(full));
  });
});
