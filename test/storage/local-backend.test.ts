import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { FtpError } from '../../src/errors.js';
import { createLogger } from '../../src/log/logger.js';
import type { StorageSession, UploadMode } from '../../src/storage/backend.js';
import { DigestPool } from '../../src/storage/digest-pool.js';
import { createLocalStorage } from '../../src/storage/local-backend.js';

// Storage options every test shares; digests run on a worker thread, as in the server.
const limits = { maxPathBytes: 4096, maxNameBytes: 255, digests: new DigestPool(1, 64 * 1024) };

async function readAll(stream: Readable): Promise<{ data: Buffer; chunks: number[] }> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return { data: Buffer.concat(parts), chunks: parts.map((p) => p.length) };
}

async function rejectsFtp(promise: Promise<unknown>, code: number, reason?: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof FtpError, `expected FtpError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (reason !== undefined) assert.equal(err.reason, reason);
    return true;
  });
}

describe('local storage backend', () => {
  let root: string;
  let home: string;
  let outside: string;
  let storage: StorageSession;
  const logLines: string[] = [];

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'ftpsd-storage-'));
    home = join(root, 'homes', 'alice');
    outside = join(root, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'secret'), 'top secret');
    const log = createLogger('warn', { write: (line: string) => void logLines.push(line) });
    const session = createLocalStorage({ home, ...limits, atomicUploads: true, log });
    await session.ready;
    storage = session;
    await writeFile(join(home, 'real.txt'), 'inside content');
    await mkdir(join(home, 'sub'));
    await writeFile(join(home, 'sub', 'in-sub.txt'), 'x');
    await symlink('/etc', join(home, 'etc-link'));
    await symlink(outside, join(home, 'out-link'));
    await symlink(join(outside, 'secret'), join(home, 'secret-link'));
    await symlink(join(outside, 'not-there'), join(home, 'dangling'));
    await symlink('real.txt', join(home, 'alias.txt'));
    await symlink('sub', join(home, 'sub-link'));
  });

  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('creates the home directory (mkdir -p)', async () => {
    assert.ok((await stat(home)).isDirectory());
  });

  it('keeps traversal corpus paths inside the home on real operations', async () => {
    for (const input of ['../../outside/secret', '/../../../outside/secret', '../../../../../../../../etc/passwd']) {
      const path = storage.resolve('/', input);
      await rejectsFtp(storage.stat(path), 550, 'not_found');
      await rejectsFtp(storage.openRead(path, 0, 1024), 550, 'not_found');
    }
    // Percent-encoding is not decoded: the literal name is an ordinary file inside the home.
    const literal = storage.resolve('/', '..%2f..%2foutside%2fsecret');
    const upload = await storage.openUpload(literal, { kind: 'replace' }, 1024);
    upload.stream.end('literal');
    await new Promise((r) => upload.stream.on('finish', r));
    await upload.commit();
    assert.equal(await readFile(join(home, '..%2f..%2foutside%2fsecret'), 'utf8'), 'literal');
    assert.equal(await readFile(join(outside, 'secret'), 'utf8'), 'top secret');
    for (const bad of ['..\\..\\outside\\secret', 'a\0b', 'x'.repeat(256)]) assert.throws(() => storage.resolve('/', bad), FtpError);
  });

  it('refuses every operation through a symlink that leads outside the home', async () => {
    logLines.length = 0;
    await rejectsFtp(storage.stat('/etc-link'), 550, 'path_outside_home');
    await rejectsFtp(storage.list('/etc-link'), 550, 'path_outside_home');
    await rejectsFtp(storage.openRead('/etc-link/passwd', 0, 1024), 550, 'path_outside_home');
    await rejectsFtp(storage.sha256('/etc-link/passwd'), 550, 'path_outside_home');
    await rejectsFtp(storage.openRead('/secret-link', 0, 1024), 550, 'path_outside_home');
    await rejectsFtp(storage.openUpload('/out-link/new.txt', { kind: 'replace' }, 1024), 550, 'path_outside_home');
    await rejectsFtp(storage.openUpload('/secret-link', { kind: 'append' }, 1024), 550, 'path_outside_home');
    await rejectsFtp(storage.mkdir('/out-link/d'), 550, 'path_outside_home');
    await rejectsFtp(storage.unlink('/out-link/secret'), 550, 'path_outside_home');
    await rejectsFtp(storage.rename('/real.txt', '/out-link/stolen.txt'), 550, 'path_outside_home');
    await rejectsFtp(storage.rename('/out-link/secret', '/got-it'), 550, 'path_outside_home');
    await rejectsFtp(storage.setMtime('/secret-link', new Date(0)), 550, 'path_outside_home');
    await rejectsFtp(storage.uniqueName('/out-link', 'x'), 550, 'path_outside_home');
    assert.deepEqual((await readdir(outside)).sort(), ['secret']);
    assert.equal(await readFile(join(outside, 'secret'), 'utf8'), 'top secret');
    assert.ok(existsSync(join(home, 'real.txt')));
    const warned = logLines.map((l) => JSON.parse(l) as { level: number; path?: string; reason?: string }).filter((l) => l.reason === 'path_outside_home');
    assert.ok(warned.some((l) => l.path === '/etc-link/passwd' && l.level === 40), 'a warn event names the virtual path');
  });

  it('refuses to write through a dangling symlink', async () => {
    await rejectsFtp(storage.openUpload('/dangling', { kind: 'replace' }, 1024), 550, 'broken_link');
    const inPlace = createLocalStorage({ home, ...limits, atomicUploads: false });
    await rejectsFtp(inPlace.openUpload('/dangling', { kind: 'replace' }, 1024), 550, 'broken_link');
    assert.equal(existsSync(join(outside, 'not-there')), false);
  });

  it('follows symlinks whose target is inside the home', async () => {
    const { data } = await readAll(await storage.openRead('/alias.txt', 0, 1024));
    assert.equal(data.toString(), 'inside content');
    const st = await storage.stat('/alias.txt');
    assert.equal(st.type, 'file');
    assert.equal(st.name, 'alias.txt');
    assert.deepEqual((await storage.list('/sub-link')).map((e) => e.name), ['in-sub.txt']);
  });

  it('lists symlinks by what they lead to, or as links when they cannot be followed', async () => {
    const entries = new Map((await storage.list('/')).map((e) => [e.name, e]));
    assert.equal(entries.get('alias.txt')?.type, 'file');
    assert.equal(entries.get('alias.txt')?.size, 'inside content'.length);
    assert.equal(entries.get('sub-link')?.type, 'dir');
    assert.equal(entries.get('etc-link')?.type, 'link');
    assert.equal(entries.get('secret-link')?.type, 'link');
    assert.equal(entries.get('dangling')?.type, 'link');
    assert.equal(entries.get('sub')?.type, 'dir');
  });

  it('refuses a symlink loop with 550', async () => {
    await symlink('loop-b', join(home, 'loop-a'));
    await symlink('loop-a', join(home, 'loop-b'));
    await rejectsFtp(storage.openRead('/loop-a', 0, 1024), 550, 'symlink_loop');
    await rejectsFtp(storage.openUpload('/loop-a', { kind: 'replace' }, 1024), 550, 'symlink_loop');
    assert.equal((await storage.list('/')).find((e) => e.name === 'loop-a')?.type, 'link');
  });

  it('deleting an outside link removes only the link', async () => {
    await symlink(outside, join(home, 'doomed-link'));
    await storage.unlink('/doomed-link');
    assert.equal(existsSync(join(home, 'doomed-link')), false);
    assert.equal(await readFile(join(outside, 'secret'), 'utf8'), 'top secret');
  });

  it('refuses to remove or rename the home itself', async () => {
    await rejectsFtp(storage.rmdir('/'), 550);
    await rejectsFtp(storage.unlink('/'), 550);
    await rejectsFtp(storage.rename('/', '/x'), 550);
    await rejectsFtp(storage.rename('/real.txt', '/'), 550);
    await rejectsFtp(storage.mkdir('/'), 550);
    await rejectsFtp(storage.openUpload('/', { kind: 'replace' }, 1024), 550);
  });

  it('mkdir, rmdir, unlink and rename behave as FTP clients expect', async () => {
    await storage.mkdir('/work dir');
    await rejectsFtp(storage.mkdir('/work dir'), 550, 'exists');
    await rejectsFtp(storage.mkdir('/missing/child'), 550, 'not_found');
    await writeFile(join(home, 'work dir', 'f.txt'), 'f');
    await rejectsFtp(storage.rmdir('/work dir'), 550, 'exists');
    await rejectsFtp(storage.unlink('/work dir'), 550, 'is_dir');
    await rejectsFtp(storage.rmdir('/work dir/f.txt'), 550, 'not_dir');
    await rejectsFtp(storage.rename('/work dir', '/work dir/inner'), 550, 'rename_into_itself');
    await rejectsFtp(storage.rename('/work dir/f.txt', '/no such dir/f.txt'), 550, 'not_found');
    await rejectsFtp(storage.rename('/nothing', '/else'), 550, 'not_found');
    await storage.rename('/work dir/f.txt', '/work dir/g é.txt');
    assert.deepEqual((await storage.list('/work dir')).map((e) => e.name), ['g é.txt']);
    await storage.unlink('/work dir/g é.txt');
    await rejectsFtp(storage.unlink('/work dir/g é.txt'), 550, 'not_found');
    await storage.rmdir('/work dir');
    assert.equal(existsSync(join(home, 'work dir')), false);
  });

  it('rmdir removes a directory that holds only kept partials', async () => {
    await mkdir(join(home, 'kept'));
    await writeFile(join(home, 'kept', '.ftpsd-partial.big.iso'), 'half');
    assert.deepEqual(await storage.list('/kept'), []);
    await storage.rmdir('/kept');
    assert.equal(existsSync(join(home, 'kept')), false);
  });

  it('stat reports type, size, permission bits and a stable unique fact', async () => {
    const a = await storage.stat('/real.txt');
    const b = await storage.stat('/real.txt');
    assert.equal(a.type, 'file');
    assert.equal(a.size, 14);
    assert.equal(a.mode, (await stat(join(home, 'real.txt'))).mode & 0o7777);
    assert.equal(a.unique, b.unique);
    assert.notEqual(a.unique, (await storage.stat('/sub')).unique);
    assert.equal((await storage.stat('/')).name, '/');
    assert.equal((await storage.stat('/')).type, 'dir');
    await rejectsFtp(storage.list('/real.txt'), 550, 'not_dir');
  });

  it('openRead honours the offset and chunk size, refuses directories and offsets past the end', async () => {
    const content = Buffer.alloc(100 * 1024);
    for (let i = 0; i < content.length; i++) content[i] = i % 251;
    await writeFile(join(home, 'data.bin'), content);
    const whole = await readAll(await storage.openRead('/data.bin', 0, 16 * 1024));
    assert.ok(whole.data.equals(content));
    assert.ok(whole.chunks.every((n) => n <= 16 * 1024));
    assert.equal(whole.chunks[0], 16 * 1024);
    const tail = await readAll(await storage.openRead('/data.bin', 1000, 64 * 1024));
    assert.ok(tail.data.equals(content.subarray(1000)));
    assert.equal((await readAll(await storage.openRead('/data.bin', content.length, 1024))).data.length, 0);
    await rejectsFtp(storage.openRead('/data.bin', content.length + 1, 1024), 554, 'invalid_rest');
    await rejectsFtp(storage.openRead('/sub', 0, 1024), 550, 'is_dir');
    await rejectsFtp(storage.openRead('/nope', 0, 1024), 550, 'not_found');
  });

  it('setMtime changes the modification time and keeps the access time', async () => {
    const before = await stat(join(home, 'real.txt'));
    const when = new Date(Date.UTC(2020, 1, 3, 4, 5, 6));
    await storage.setMtime('/real.txt', when);
    const afterSt = await stat(join(home, 'real.txt'));
    assert.equal(afterSt.mtime.getTime(), when.getTime());
    assert.equal(afterSt.atime.getTime(), before.atime.getTime());
    assert.equal((await storage.stat('/real.txt')).mtime.getTime(), when.getTime());
  });

  it('uniqueName returns names that do not exist yet', async () => {
    assert.equal(await storage.uniqueName('/sub', 'fresh.txt'), 'fresh.txt');
    assert.equal(await storage.uniqueName('/sub', 'in-sub.txt'), 'in-sub.txt.1');
    await writeFile(join(home, 'sub', 'in-sub.txt.1'), '');
    assert.equal(await storage.uniqueName('/sub', 'in-sub.txt'), 'in-sub.txt.2');
    assert.equal(await storage.uniqueName('/sub', ''), 'file');
    assert.equal(await storage.uniqueName('/sub', '..\\evil'), 'file');
    assert.equal(await storage.uniqueName('/sub', '/a/b/c.txt'), 'c.txt');
    await rejectsFtp(storage.uniqueName('/real.txt', 'x'), 550, 'not_dir');
  });

  it('sha256 streams the stored file', async () => {
    const content = Buffer.alloc(3 * 1024 * 1024 + 17, 'ab');
    await writeFile(join(home, 'hash me.bin'), content);
    assert.equal(await storage.sha256('/hash me.bin'), createHash('sha256').update(content).digest('hex'));
    await writeFile(join(home, 'empty'), '');
    assert.equal(await storage.sha256('/empty'), createHash('sha256').digest('hex'));
    await rejectsFtp(storage.sha256('/sub'), 550, 'is_dir');
  });

  it('lists UTF-8 and space names, hides upload temporaries and names clients cannot use', async () => {
    await mkdir(join(home, 'listing'));
    for (const name of ['plain.txt', 'with space.txt', 'ünïcødé 日本.txt', '.ftpsd-upload-0123456789ab.plain.txt', '.ftpsd-partial.x', 'evil\r\n226 fake', 'back\\slash']) {
      await writeFile(join(home, 'listing', name), 'x');
    }
    const names = (await storage.list('/listing')).map((e) => e.name);
    assert.deepEqual(names, ['plain.txt', 'with space.txt', 'ünïcødé 日本.txt']);
  });

  it('lists sorted up to listingSortMaxEntries entries, and every entry (in directory order) beyond', async () => {
    const small = createLocalStorage({ home, ...limits, atomicUploads: true, listingSortMaxEntries: 5 });
    await mkdir(join(home, 'five'));
    await mkdir(join(home, 'many'));
    const names = (n: number) => Array.from({ length: n }, (_, i) => `n-${String((i * 7) % n).padStart(3, '0')}`);
    for (const name of names(5)) await writeFile(join(home, 'five', name), '');
    for (const name of names(200)) await writeFile(join(home, 'many', name), name);
    const read = async (path: string) => {
      const out: string[] = [];
      for await (const e of await small.openListing(path)) out.push(e.name);
      return out;
    };
    assert.deepEqual(await read('/five'), names(5).sort());
    const many = await read('/many');
    assert.deepEqual([...many].sort(), names(200).sort());
    const namesOnly: string[] = [];
    for await (const n of (await small.openListing('/many')).names()) namesOnly.push(n);
    assert.deepEqual(namesOnly.sort(), names(200).sort());
    // Sizes come from each entry's own lstat, not from a neighbour's.
    for await (const e of await small.openListing('/many')) assert.equal(e.size, e.name.length);
  });

  it('a listing closed unread, or left early, releases its directory descriptors', async () => {
    const fds = async () => (await readdir('/proc/self/fd')).length;
    const before = await fds();
    for (let i = 0; i < 5; i++) {
      const unread = await storage.openListing('/sub');
      await unread.close();
      for await (const e of await storage.openListing('/many')) {
        assert.ok(e.name.length > 0);
        break;
      }
    }
    assert.equal(await fds(), before);
  });

  it('meets a FIFO without blocking: refused before anything opens it for I/O', async () => {
    execFileSync('mkfifo', [join(home, 'pipe')]);
    try {
      assert.equal((await storage.stat('/pipe')).type, 'other');
      await rejectsFtp(storage.openRead('/pipe', 0, 1024), 550, 'not_file');
      await rejectsFtp(storage.sha256('/pipe'), 550, 'not_file');
      await rejectsFtp(storage.list('/pipe'), 550, 'not_dir');
      for (const atomicUploads of [true, false]) {
        const s = createLocalStorage({ home, ...limits, atomicUploads });
        await rejectsFtp(s.openUpload('/pipe', { kind: 'replace' }, 1024), 550, 'not_file');
        await rejectsFtp(s.openUpload('/pipe', { kind: 'append' }, 1024), 550, 'not_file');
        await rejectsFtp(s.openUpload('/pipe', { kind: 'resume', offset: 1 }, 1024), 550, 'not_file');
      }
    } finally {
      await rm(join(home, 'pipe'));
    }
  });

  it('leaves no descriptor open after any operation, succeeded or refused', async () => {
    await mkdir(join(home, 'fds'));
    await writeFile(join(home, 'fds', 'f.txt'), 'some bytes');
    const upload = async (path: string, mode: UploadMode, data: string, end: 'commit' | 'abort' | 'keep') => {
      const u = await storage.openUpload(path, mode, 1024);
      await new Promise<void>((resolve, reject) => u.stream.end(data, () => resolve()).once('error', reject));
      if (end === 'commit') await u.commit();
      else await u.abort(end === 'keep');
    };
    const everything = async () => {
      await storage.stat('/fds/f.txt');
      await rejectsFtp(storage.stat('/fds/missing'), 550, 'not_found');
      await rejectsFtp(storage.stat('/etc-link'), 550, 'path_outside_home');
      await storage.setMtime('/fds/f.txt', new Date(Date.UTC(2021, 0, 1)));
      await rejectsFtp(storage.setMtime('/fds/missing', new Date()), 550, 'not_found');
      await readAll(await storage.openRead('/fds/f.txt', 2, 1024));
      (await storage.openRead('/fds/f.txt', 0, 1024)).destroy();
      await rejectsFtp(storage.openRead('/fds/f.txt', 1000, 1024), 554, 'invalid_rest');
      await rejectsFtp(storage.openRead('/fds', 0, 1024), 550, 'is_dir');
      await storage.sha256('/fds/f.txt');
      await storage.spaceAvailable('/fds');
      await storage.uniqueName('/fds', 'f.txt');
      await storage.list('/fds');
      await upload('/fds/up.txt', { kind: 'replace' }, 'new', 'commit');
      await upload('/fds/up.txt', { kind: 'append' }, ' more', 'commit');
      await upload('/fds/up.txt', { kind: 'replace' }, 'partial', 'keep');
      await upload('/fds/up.txt', { kind: 'resume', offset: 3 }, 'tail', 'commit');
      await upload('/fds/up.txt', { kind: 'replace' }, 'dropped', 'abort');
      await rejectsFtp(storage.openUpload('/fds', { kind: 'replace' }, 1024), 550, 'is_dir');
      await rejectsFtp(storage.openUpload('/fds/up.txt', { kind: 'resume', offset: 1000 }, 1024), 554, 'invalid_rest');
      await rejectsFtp(storage.openUpload('/fds/no/up.txt', { kind: 'replace' }, 1024), 550, 'not_found');
      await storage.mkdir('/fds/d');
      await rejectsFtp(storage.mkdir('/fds/d'), 550, 'exists');
      await storage.rename('/fds/d', '/fds/e');
      await rejectsFtp(storage.rename('/fds/d', '/fds/e'), 550, 'not_found');
      await storage.rmdir('/fds/e');
      await rejectsFtp(storage.rmdir('/fds/e'), 550, 'not_found');
      await storage.unlink('/fds/up.txt');
      await rejectsFtp(storage.unlink('/fds/up.txt'), 550, 'not_found');
    };
    // A first round starts the worker threads (digests, listings), which have descriptors of their own.
    await everything();
    const fds = async () => (await readdir('/proc/self/fd')).length;
    const before = await fds();
    await everything();
    assert.equal(await fds(), before);
  });

  it('refuses moving a directory into itself through a symlink alias', async () => {
    await rejectsFtp(storage.rename('/sub', '/sub-link/deeper'), 550, 'rename_into_itself');
    assert.ok((await lstat(join(home, 'sub'))).isDirectory());
  });
});
