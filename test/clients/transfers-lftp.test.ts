import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runLftp } from '../helpers/clients.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// lftp (GnuTLS) mirrors a directory tree up (`mirror -R`) and back down; names with spaces and UTF-8 survive both
// ways, every file keeps its SHA-256, and every data connection resumed the control session.

const USER = 'alice';
const PASSWORD = 'alice-secret';
const VERSIONS = [
  { name: 'TLSv1.2', priority: 'NORMAL:-VERS-ALL:+VERS-TLS1.2' },
  { name: 'TLSv1.3', priority: 'NORMAL:-VERS-ALL:+VERS-TLS1.3' },
] as const;

/** A small tree: nested directories, an empty file, an empty directory, spaces and non-ASCII names. */
const TREE: Record<string, Buffer | null> = {
  'readme.txt': Buffer.from('top level\n'),
  'empty file': Buffer.alloc(0),
  'with space/inner file.bin': randomBytes(70_000),
  'with space/日本/データ.dat': randomBytes(12_345),
  'ümlaut dir/grüße.txt': Buffer.from('grüße\n'),
  'ümlaut dir/deeper/one more.bin': randomBytes(1),
  'empty dir': null,
};

async function writeTree(root: string): Promise<void> {
  for (const [path, body] of Object.entries(TREE)) {
    if (body === null) {
      await mkdir(join(root, path), { recursive: true });
      continue;
    }
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), body);
  }
}

/** Relative path → SHA-256 for files, 'dir' for directories. */
async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    const full = join(entry.parentPath ?? entry.path, entry.name);
    const rel = relative(root, full);
    out[rel] = entry.isDirectory() ? 'dir' : createHash('sha256').update(await readFile(full)).digest('hex');
  }
  return out;
}

describe('lftp mirror round trips', () => {
  let t: TestServer;
  let local: string;
  before(async () => {
    t = await startTestServer();
    local = await mkdtemp(join(tmpdir(), 'ftpsd-lftp-'));
  });
  after(async () => {
    await t.close();
    await rm(local, { recursive: true, force: true });
  });

  for (const version of VERSIONS) {
    test(`${version.name}: mirror -R then mirror back gives the same tree`, async () => {
      const src = join(local, `src-${version.name}`);
      const back = join(local, `back-${version.name}`);
      await writeTree(src);
      const expected = await snapshot(src);
      const opts = { port: t.port, user: USER, password: PASSWORD, settings: [`set ssl:priority "${version.priority}"`] };

      const up = await runLftp(`mkdir "${version.name}"\nmirror -R --no-perms "${src}" "${version.name}"`, opts);
      assert.equal(up.code, 0, up.stderr);
      assert.deepEqual(await snapshot(join(t.home(USER), version.name)), expected, 'the tree on the server');

      const down = await runLftp(`mirror --no-perms "${version.name}" "${back}"`, opts);
      assert.equal(down.code, 0, down.stderr);
      assert.deepEqual(await snapshot(back), expected, 'the tree mirrored back');

      const transfers = t.logs().filter((l) => l.audit === true && l.event === 'transfer' && String(l.path).startsWith(`/${version.name}/`));
      const paths = (direction: string) => transfers.filter((l) => l.direction === direction).map((l) => String(l.path).slice(version.name.length + 2)).sort();
      const files = Object.entries(TREE).filter(([, b]) => b !== null);
      assert.deepEqual(paths('upload'), files.map(([p]) => p).sort());
      // lftp creates an empty file locally without fetching it.
      assert.deepEqual(paths('download'), files.filter(([, b]) => b!.length > 0).map(([p]) => p).sort());
      for (const tr of transfers) {
        assert.equal(tr.result, 'ok', JSON.stringify(tr));
        assert.equal(tr.resumed, true, `${String(tr.path)} resumed the control session`);
        assert.equal(tr.tlsVersion, version.name);
      }
      for (const tr of transfers.filter((l) => l.direction === 'upload')) {
        const rel = String(tr.path).slice(version.name.length + 2);
        assert.equal(tr.sha256, expected[rel], `audit hash of ${rel}`);
      }
    });
  }
});
