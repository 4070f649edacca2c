import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCurl, type RunResult } from '../helpers/clients.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// curl with several URLs in one call, as partners script it: curl keeps one control connection for all of them and
// opens a data connection per URL, each of which must resume the control session (on TLS 1.3 that takes a fresh
// ticket per data connection, as OpenSSL clients use each ticket once). Every combination runs with
// `--ftp-method singlecwd` (CWD into the directory, then the bare name) and `nocwd` (the full path in each command).
//
// Uploads over TLS 1.3: curl 7.88 (Debian 12) never reads a data connection while uploading, so anything the server
// sends there (a session ticket) stays unread and curl's close resets the connection, which can drop the end of the
// upload (curl issue 6149; see CURL_UPLOAD_TLS_ARGS in ../helpers/clients.ts). A cut upload would show here as a 426
// and a missing file, never as a short file.

const USER = 'alice';
const PASSWORD = 'alice-secret';
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const VERSIONS = [
  { name: 'TLSv1.2', args: ['--tlsv1.2', '--tls-max', '1.2'] },
  { name: 'TLSv1.3', args: ['--tlsv1.3'] },
] as const;
const METHODS = ['singlecwd', 'nocwd'] as const;
const FILES: Record<string, Buffer> = {
  'first.bin': randomBytes(1024 * 1024 + 17),
  'second file.txt': Buffer.from('second file\n'.repeat(1000)),
  'third.bin': randomBytes(5),
};
const NAMES = Object.keys(FILES);

describe('curl: several files in one session', () => {
  let t: TestServer;
  let local: string;
  const curl = (args: string[]): Promise<RunResult> => runCurl(['--ssl-reqd', '-k', '--user', `${USER}:${PASSWORD}`, ...args], { timeoutMs: 60_000 });
  const url = (path: string) => `ftp://127.0.0.1:${t.port}/${path.split('/').map(encodeURIComponent).join('/')}`;

  before(async () => {
    t = await startTestServer();
    local = await mkdtemp(join(tmpdir(), 'ftpsd-curl-multi-'));
    for (const [name, body] of Object.entries(FILES)) await writeFile(join(local, name), body);
  });
  after(async () => {
    await t.close();
    await rm(local, { recursive: true, force: true });
  });

  /** Runs curl and returns the audit records it caused, after checking it used exactly one control connection. */
  async function oneSession(args: string[]): Promise<{ r: RunResult; transfers: Array<Record<string, unknown>> }> {
    const mark = t.logs().length;
    const r = await curl(args);
    const logs = t.logs().slice(mark);
    const refused = logs.filter((l) => l.event === 'data_connection_refused' && l.audit !== true);
    const failed = logs.filter((l) => (l.audit === true && l.event === 'transfer' && l.result !== 'ok') || l.event === 'transfer_interrupted');
    assert.equal(r.code, 0, `curl exit ${r.code}: ${r.stderr}; refusals: ${JSON.stringify(refused)}; failed transfers: ${JSON.stringify(failed)}`);
    assert.deepEqual(refused, [], 'no data connection refused');
    assert.equal(logs.filter((l) => l.audit === true && l.event === 'login').length, 1, 'one login: one control connection for every URL');
    return { r, transfers: logs.filter((l) => l.audit === true && l.event === 'transfer') };
  }

  /** The files to download, put on the server directly, so a download test does not depend on an upload test. */
  async function placeFiles(dir: string): Promise<void> {
    await mkdir(join(t.home(USER), dir), { recursive: true });
    for (const [name, body] of Object.entries(FILES)) await writeFile(join(t.home(USER), dir, name), body);
  }

  function assertResumed(transfers: Array<Record<string, unknown>>, version: string, count: number): void {
    assert.equal(transfers.length, count, JSON.stringify(transfers));
    for (const tr of transfers) {
      assert.equal(tr.result, 'ok', JSON.stringify(tr));
      assert.equal(tr.resumed, true, `${String(tr.path)} resumed the control session`);
      assert.equal(tr.tlsVersion, version);
    }
  }

  for (const version of VERSIONS) {
    for (const method of METHODS) {
      const dir = `${version.name}-${method}/in box`;
      const label = `${version.name}, --ftp-method ${method}`;

      // curl 7.88 never reads an upload's data connection, so over TLS 1.3 the fresh ticket sent there may stay unread:
      // its next upload then offers no ticket (425) or its close resets the connection (curl issue 6149). Several
      // uploads per call are therefore run on TLS 1.2, as the partner guide tells curl users.
      const uploadSkip = version.name === 'TLSv1.3' ? 'curl 7.88 does not read upload data connections over TLS 1.3 (curl issue 6149); covered on TLS 1.2' : false;
      test(`${label}: three uploads in one call arrive whole`, { skip: uploadSkip }, async () => {
        const upDir = `${version.name}-${method}/uploads`;
        await mkdir(join(t.home(USER), upDir), { recursive: true });
        const args = NAMES.flatMap((n) => ['-T', join(local, n), url(`${upDir}/${n}`)]);
        const { transfers } = await oneSession([...version.args, '--ftp-method', method, ...args]);
        assertResumed(transfers, version.name, NAMES.length);
        for (const [name, body] of Object.entries(FILES)) {
          assert.equal(sha256(await readFile(join(t.home(USER), upDir, name))), sha256(body), `${name} stored`);
          assert.equal(transfers.find((tr) => tr.path === `/${upDir}/${name}`)?.sha256, sha256(body), `audit hash of ${name}`);
        }
      });

      test(`${label}: LIST then RETR in one call`, async () => {
        await placeFiles(dir);
        const out = join(local, `${version.name}-${method}-list`);
        await mkdir(out, { recursive: true });
        const { transfers } = await oneSession([...version.args, '--ftp-method', method, url(`${dir}/`), '-o', join(out, 'listing'), url(`${dir}/first.bin`), '-o', join(out, 'first.bin')]);
        // Listings are not audited; the RETR is, and the listing's content shows its data connection worked.
        assertResumed(transfers, version.name, 1);
        const listing = (await readFile(join(out, 'listing'), 'utf8')).split(/\r?\n/).filter((l) => l !== '');
        assert.deepEqual(listing.map((l) => l.split(/\s+/).slice(8).join(' ')).sort(), [...NAMES].sort(), listing.join('\n'));
        assert.equal(sha256(await readFile(join(out, 'first.bin'))), sha256(FILES['first.bin']!));
      });

      test(`${label}: three RETRs in one call`, async () => {
        await placeFiles(dir);
        const out = join(local, `${version.name}-${method}-retr`);
        await mkdir(out, { recursive: true });
        const args = NAMES.flatMap((n) => [url(`${dir}/${n}`), '-o', join(out, n)]);
        const { transfers } = await oneSession([...version.args, '--ftp-method', method, ...args]);
        assertResumed(transfers, version.name, NAMES.length);
        for (const [name, body] of Object.entries(FILES)) assert.equal(sha256(await readFile(join(out, name))), sha256(body), `${name} downloaded`);
      });
    }
  }
});
