import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runProcess, type RunResult } from '../helpers/clients.js';
import { contentHashes, partnerTree, writeTree } from '../helpers/file-tree.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// rclone (Debian 12's 1.60, Go's crypto/tls) with its FTP backend over explicit TLS: a nested tree with UTF-8 names
// and an 8 MiB file goes up, is compared byte for byte with `rclone check --download`, and comes back. rclone runs
// several control connections at once and its data connections draw TLS sessions from one cache shared by all of
// them, so a data connection often resumes a session of a sibling control connection (same user, same address).
// TLS 1.2 is forced on rclone's side (`disable_tls13`). One retry and one low-level retry, so a refused data
// connection fails the run instead of being retried away.

const USER = 'alice';
const PASSWORD = 'alice-secret';
const MIB = 1024 * 1024;
const VERSIONS = [
  { name: 'TLSv1.2', config: ['disable_tls13 = true'] },
  { name: 'TLSv1.3', config: [] },
] as const;
const VARIANTS = [
  // rclone 1.60's defaults: --transfers 4 --checkers 8, as many FTP connections as they want.
  { name: 'default parallelism', args: [] },
  // The same four transfers from a bounded connection pool (concurrency = transfers + checkers + 1, as rclone's
  // documentation asks), so control connections are reused across files.
  { name: '--transfers 4 from a pool of 9 connections', args: ['--transfers', '4', '--checkers', '4', '--ftp-concurrency', '9'] },
  // Files above the cutoff are downloaded in four ranged parts at once (REST + RETR each). Each part closes its data
  // connection once it has its range, and the server answers that RETR with 426; rclone 1.60 means to ignore a 426
  // after such a close, but its check misses the error as its own code wraps it, so the copy reports it (any server
  // that answers 426 there does the same). The test checks the four parts the server served, then copies back
  // without ranged parts.
  { name: '--multi-thread-streams 4', args: ['--multi-thread-streams', '4', '--multi-thread-cutoff', '1M'] },
] as const;

describe('rclone: a tree up and back over parallel connections', () => {
  let t: TestServer;
  let local: string;
  let obscured: string;

  before(async () => {
    t = await startTestServer();
    local = await mkdtemp(join(tmpdir(), 'ftpsd-rclone-'));
    // The password is given to rclone obscured, as its config file stores it; `-` reads it from standard input.
    const ob = await runProcess('rclone', ['obscure', '-'], { input: PASSWORD });
    assert.equal(ob.code, 0, ob.stderr);
    obscured = ob.stdout.trim();
  });
  after(async () => {
    await t.close();
    await rm(local, { recursive: true, force: true });
  });

  /** Runs rclone with its own config file naming this server as remote `ftpsd:`; returns what the server logged. */
  async function rclone(version: (typeof VERSIONS)[number], args: string[], opts: { rangedPartsClosedEarly?: boolean } = {}): Promise<{ r: RunResult; logs: Array<Record<string, unknown>> }> {
    const config = join(local, `rclone-${version.name}.conf`);
    await writeFile(
      config,
      ['[ftpsd]', 'type = ftp', 'host = 127.0.0.1', `port = ${t.port}`, `user = ${USER}`, `pass = ${obscured}`, 'explicit_tls = true', 'no_check_certificate = true', ...version.config, ''].join('\n'),
      { mode: 0o600 },
    );
    const mark = t.logs().length;
    const r = await runProcess('rclone', ['--config', config, '--cache-dir', join(local, 'cache'), '--retries', '1', '--low-level-retries', '1', ...args], { timeoutMs: 90_000 });
    const logs = t.logs().slice(mark);
    const refused = logs.filter((l) => l.event === 'data_connection_refused' && l.audit !== true);
    const onlyEarlyClose = opts.rangedPartsClosedEarly === true && /Failed to copy: 1 error occurred:\s+\* 426 Connection closed; transfer aborted/.test(r.stderr) && refused.length === 0;
    if (!onlyEarlyClose) assert.equal(r.code, 0, `rclone ${args[0]} exit ${r.code}: ${r.stderr}; refusals: ${JSON.stringify(refused)}`);
    assert.deepEqual(refused, [], 'no data connection refused');
    return { r, logs };
  }
  const transfers = (logs: Array<Record<string, unknown>>) => logs.filter((l) => l.audit === true && l.event === 'transfer');

  for (const version of VERSIONS) {
    for (const [i, variant] of VARIANTS.entries()) {
      test(`${version.name}, ${variant.name}: copy up, check --download, copy back`, async () => {
        const tree = partnerTree(8 * MIB);
        const src = join(local, `src-${version.name}-${i}`);
        const back = join(local, `back-${version.name}-${i}`);
        const remote = `ftpsd:${version.name}-${i}/drop`;
        await writeTree(src, tree);
        const expected = await contentHashes(src);
        const files = Object.values(tree).filter((b) => b !== null).length;

        const up = await rclone(version, ['copy', '--create-empty-src-dirs', ...variant.args, src, remote]);
        assert.deepEqual(await contentHashes(join(t.home(USER), `${version.name}-${i}`, 'drop')), expected, 'the tree on the server');
        const uploads = transfers(up.logs).filter((l) => l.direction === 'upload');
        assert.equal(uploads.length, files, 'each file uploaded once');
        assert.ok(new Set(up.logs.filter((l) => l.audit === true && l.event === 'login').map((l) => l.sid)).size > 1, 'rclone used parallel control connections');

        const check = await rclone(version, ['check', '--download', ...variant.args, src, remote]);
        assert.match(check.r.stderr, new RegExp(`0 differences found`), check.r.stderr);
        assert.match(check.r.stderr, new RegExp(`${files} matching files`), check.r.stderr);

        const ranged = variant.name === '--multi-thread-streams 4';
        const down = await rclone(version, ['copy', '--create-empty-src-dirs', ...variant.args, remote, back], { rangedPartsClosedEarly: ranged });
        if (ranged) {
          const parts = transfers(down.logs).filter((l) => String(l.path).endsWith('/drop/big.bin'));
          assert.deepEqual(parts.map((p) => Number(p.offset)).sort((a, b) => a - b), [0, 2 * MIB, 4 * MIB, 6 * MIB], JSON.stringify(parts));
          // Once one part reports the 426, rclone cancels the others; at least one part got its whole range first.
          assert.ok(parts.some((p) => Number(p.bytes) >= 2 * MIB), JSON.stringify(parts));
          await rm(back, { recursive: true, force: true });
          const whole = await rclone(version, ['copy', '--create-empty-src-dirs', '--multi-thread-streams', '0', remote, back]);
          down.logs.push(...whole.logs);
        }
        assert.deepEqual(await contentHashes(back), expected, 'the tree copied back');

        // Ranged parts that rclone cancelled before their data connection opened never had one to resume.
        const served = transfers(down.logs).filter((l) => !(ranged && l.code === 425 && l.bytes === 0));
        const all = [...uploads, ...transfers(check.logs), ...served];
        for (const tr of all) {
          assert.equal(tr.resumed, true, `${String(tr.path)} resumed a session of this user`);
          assert.equal(tr.tlsVersion, version.name);
          // rclone closes a download once it has what it asked for; everything else ends with 226.
          assert.ok(tr.result === 'ok' || (tr.direction === 'download' && tr.result === 'aborted'), JSON.stringify(tr));
        }
      });
    }
  }
});
