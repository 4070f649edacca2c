import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runLftp, type RunResult } from '../helpers/clients.js';
import { contentHashes, fileHashes, partnerTree, writeTree } from '../helpers/file-tree.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

// lftp (GnuTLS) moving many files per run: `mirror -R -P 5` and `mirror -P 5` spread a tree over up to five
// parallel sessions, `pget -n 4` fetches one file in four ranged parts on four sessions, `put -c` finishes an upload
// that stopped halfway. Every data connection must resume its own control session, whichever of the parallel
// sessions it belongs to.

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const ALICE: TestUser = { name: 'alice', password: 'alice-secret' };
// pget starts a part only while the first one has not reached its range yet; on loopback a whole 16 MiB file arrives
// before three more logins are done, so this user's downloads are held to 1 MiB/s each: the first part needs 4 s to
// reach the second part's range, time enough for the other logins even on a busy machine.
const RATED: TestUser = { name: 'rated', password: 'rated-secret', downloadBytesPerSecond: 1024 * 1024 };
const MIB = 1024 * 1024;
const VERSIONS = [
  { name: 'TLSv1.2', priority: 'NORMAL:-VERS-ALL:+VERS-TLS1.2' },
  { name: 'TLSv1.3', priority: 'NORMAL:-VERS-ALL:+VERS-TLS1.3' },
] as const;

describe('lftp: parallel mirror, pget and put -c', () => {
  let t: TestServer;
  let local: string;
  before(async () => {
    t = await startTestServer({ users: [ALICE, RATED] });
    local = await mkdtemp(join(tmpdir(), 'ftpsd-lftp-multi-'));
  });
  after(async () => {
    await t.close();
    await rm(local, { recursive: true, force: true });
  });

  /** Runs an lftp script as `user` and returns what it logged, after checking it ran and nothing was refused. */
  async function lftp(user: TestUser, priority: string, script: string): Promise<{ r: RunResult; logs: Array<Record<string, unknown>> }> {
    const mark = t.logs().length;
    const r = await runLftp(script, { port: t.port, user: user.name, password: user.password, settings: [`set ssl:priority "${priority}"`], timeoutMs: 90_000 });
    const logs = t.logs().slice(mark);
    const refused = logs.filter((l) => l.event === 'data_connection_refused' && l.audit !== true);
    const failed = logs.filter((l) => (l.audit === true && l.event === 'transfer' && l.result !== 'ok' && l.result !== 'aborted') || l.event === 'transfer_interrupted');
    assert.equal(r.code, 0, `lftp exit ${r.code}: ${r.stderr}; refusals: ${JSON.stringify(refused)}; failed transfers: ${JSON.stringify(failed)}`);
    assert.deepEqual(refused, [], 'no data connection refused');
    return { r, logs };
  }
  const audits = (logs: Array<Record<string, unknown>>, event: string) => logs.filter((l) => l.audit === true && l.event === event);

  for (const version of VERSIONS) {
    test(`${version.name}: mirror -R -P 5 and mirror -P 5 give the same tree, over parallel sessions`, async () => {
      const tree = partnerTree(3 * MIB);
      const src = join(local, `src-${version.name}`);
      const back = join(local, `back-${version.name}`);
      await writeTree(src, tree);
      const expected = await contentHashes(src);
      const files = fileHashes(tree);

      const up = await lftp(ALICE, version.priority, `mkdir "${version.name}"\nmirror -R -P 5 --no-perms "${src}" "${version.name}"`);
      assert.deepEqual(await contentHashes(join(t.home(ALICE.name), version.name)), expected, 'the tree on the server');
      const uploads = audits(up.logs, 'transfer');
      assert.deepEqual(Object.fromEntries(uploads.map((u) => [String(u.path).slice(version.name.length + 2), u.sha256]).sort()), Object.fromEntries(Object.entries(files).sort()), 'one upload per file, with its SHA-256');
      assert.ok(audits(up.logs, 'login').length > 1, `mirror -R -P 5 used parallel sessions (${audits(up.logs, 'login').length} logins)`);

      const down = await lftp(ALICE, version.priority, `mirror -P 5 --no-perms "${version.name}" "${back}"`);
      assert.deepEqual(await contentHashes(back), expected, 'the tree mirrored back');
      // lftp creates an empty file locally without fetching it.
      const nonEmpty = Object.entries(tree).filter(([, b]) => b !== null && b.length > 0).length;
      assert.equal(audits(down.logs, 'transfer').length, nonEmpty);
      assert.ok(audits(down.logs, 'login').length > 1, `mirror -P 5 used parallel sessions (${audits(down.logs, 'login').length} logins)`);

      for (const tr of [...uploads, ...audits(down.logs, 'transfer')]) {
        assert.equal(tr.result, 'ok', JSON.stringify(tr));
        assert.equal(tr.resumed, true, `${String(tr.path)} resumed its control session`);
        assert.equal(tr.tlsVersion, version.name);
      }
    });

    test(`${version.name}: pget -n 4 of a 16 MiB file uses four sessions and ranges, and the file is whole`, async () => {
      const body = randomBytes(16 * MIB);
      const name = `pget-${version.name}.bin`;
      await writeFile(join(t.home(RATED.name), name), body);
      const out = join(local, name);
      await lftp(RATED, version.priority, `pget -n 4 "${name}" -o "${out}"`);
      assert.equal(sha256(await readFile(out)), sha256(body));
      // lftp exits once it has every range; the server records a part it closed early when it sees the close.
      const deadline = Date.now() + 10_000;
      const partsNow = () => t.logs().filter((l) => l.audit === true && l.event === 'transfer' && l.path === `/${name}`);
      while (partsNow().length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const parts = partsNow();
      assert.deepEqual(parts.map((p) => p.offset).sort((a, b) => Number(a) - Number(b)), [0, 4 * MIB, 8 * MIB, 12 * MIB], JSON.stringify(parts));
      assert.equal(new Set(parts.map((p) => p.sid)).size, 4, 'each part on its own control session');
      for (const p of parts) {
        // A part ends where the next begins: lftp closes it there, so all but the last end as aborted.
        assert.ok(p.result === 'ok' || p.result === 'aborted', JSON.stringify(p));
        assert.ok(Number(p.bytes) >= 4 * MIB, `part at ${String(p.offset)} sent its whole range (${String(p.bytes)} bytes)`);
        assert.equal(p.resumed, true);
        assert.equal(p.tlsVersion, version.name);
      }
    });

    test(`${version.name}: put -c finishes a half-uploaded file and sends only the rest`, async () => {
      const body = randomBytes(12 * MIB + 321);
      const name = `resume-${version.name}.bin`;
      const half = 5 * MIB;
      await writeFile(join(local, name), body);
      await writeFile(join(t.home(ALICE.name), name), body.subarray(0, half));
      const { logs } = await lftp(ALICE, version.priority, `put -c "${join(local, name)}" -o "${name}"`);
      assert.equal(sha256(await readFile(join(t.home(ALICE.name), name))), sha256(body));
      const uploads = audits(logs, 'transfer').filter((l) => l.path === `/${name}`);
      assert.equal(uploads.length, 1, JSON.stringify(uploads));
      assert.equal(uploads[0]?.bytes, body.length - half, 'only the missing part travelled');
      assert.equal(uploads[0]?.sha256, sha256(body), 'the audit hash is of the whole file');
      assert.equal(uploads[0]?.resumed, true);
      assert.equal(uploads[0]?.result, 'ok');
    });
  }
});
