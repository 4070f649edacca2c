import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { runProcess } from '../helpers/clients.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

// Java with Apache Commons Net's FTPSClient, as Debian ships it (libcommons-net-java), used as a partner's batch job
// would: one session, several files up, a listing, each file back. Stock FTPSClient opens every data connection with
// a fresh TLS session. The server must refuse that at once with a 425 that says what to change, and a per-user
// `requireDataSessionReuse: false` in the users file must let exactly that user transfer.

const COMMONS_NET_JAR = '/usr/share/java/commons-net.jar';
const SOURCE = join(dirname(fileURLToPath(import.meta.url)), 'java', 'FtpsBatch.java');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
const STRICT: TestUser = { name: 'alice', password: 'alice-secret' };
const EXEMPT: TestUser = { name: 'legacy-java', password: 'legacy-secret', requireDataSessionReuse: false };
const FILES: Record<string, Buffer> = {
  'a-empty.bin': Buffer.alloc(0),
  'b-small.txt': Buffer.from('one line from Java\n'),
  'c-two-mib.bin': randomBytes(2 * 1024 * 1024 + 3),
};

interface Step {
  op: 'STOR' | 'NLST' | 'RETR';
  file: string;
  ok: boolean;
  code: number;
  reply: string;
  ms: number;
  sha256?: string;
  names?: string[];
}

describe('Apache Commons Net FTPSClient (stock: no TLS session reuse)', () => {
  let classes: string;
  let local: string;

  /** Runs FtpsBatch (upload every file of `dir`, NLST, download each) as `user`; its steps, one per command. */
  async function batch(t: TestServer, user: TestUser, version: string, dir = local): Promise<Step[]> {
    const r = await runProcess('java', ['-cp', `${COMMONS_NET_JAR}:${classes}`, 'FtpsBatch', String(t.port), user.name, version, dir], {
      env: { FTPS_PASSWORD: user.password },
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Step);
  }

  before(async () => {
    classes = await mkdtemp(join(tmpdir(), 'ftpsd-java-'));
    const javac = await runProcess('javac', ['-d', classes, '-cp', COMMONS_NET_JAR, SOURCE], { timeoutMs: 60_000 });
    assert.equal(javac.code, 0, javac.stderr);
    local = join(classes, 'files');
    await mkdir(local);
    for (const [name, body] of Object.entries(FILES)) await writeFile(join(local, name), body);
  });
  after(async () => {
    await rm(classes, { recursive: true, force: true });
  });

  describe('server requires session reuse; one user is exempt in the users file', () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer({ users: [STRICT, EXEMPT] });
    });
    after(() => t.close());

    for (const version of VERSIONS) {
      test(`${version}: a user without the exception gets 425 within a second, saying to turn on session reuse`, async () => {
        const steps = await batch(t, STRICT, version);
        assert.equal(steps.length, 1, `the batch stops at its first upload: ${JSON.stringify(steps)}`);
        const [first] = steps;
        assert.equal(first?.op, 'STOR');
        assert.equal(first?.ok, false);
        assert.equal(first?.code, 425);
        assert.match(first?.reply ?? '', /^425 .*not resumed \(the client offered no session; turn on TLS session reuse in the client\)$/);
        assert.ok((first?.ms ?? Infinity) < 1_000, `refused after ${first?.ms} ms`);
        assert.equal(existsSync(join(t.home(STRICT.name), 'a-empty.bin')), false, 'nothing stored');
        const refusals = t.logs().filter((l) => l.event === 'data_connection_refused' && l.user === STRICT.name && l.audit !== true);
        assert.ok(refusals.length >= 1 && refusals.every((l) => l.reason === 'no_ticket_offered'), JSON.stringify(refusals));
        assert.equal(t.logs().some((l) => l.event === 'data_session_reuse_override' && l.user === STRICT.name), false);
      });

      test(`${version}: the exempt user moves every file up and back in one session with the same SHA-256`, async () => {
        const before = t.logs().length;
        const steps = await batch(t, EXEMPT, version);
        const names = Object.keys(FILES).sort();
        assert.deepEqual(steps.map((s) => `${s.op} ${s.file} ${s.code}`), [
          ...names.map((n) => `STOR ${n} 226`),
          'NLST  226',
          ...names.map((n) => `RETR ${n} 226`),
        ]);
        assert.deepEqual(steps.find((s) => s.op === 'NLST')?.names, names);
        for (const [name, body] of Object.entries(FILES)) {
          assert.equal(steps.find((s) => s.op === 'RETR' && s.file === name)?.sha256, sha256(body), `${name} downloaded`);
          assert.equal(sha256(await readFile(join(t.home(EXEMPT.name), name))), sha256(body), `${name} stored`);
        }
        const logs = t.logs().slice(before);
        const transfers = logs.filter((l) => l.audit === true && l.event === 'transfer');
        assert.equal(transfers.length, names.length * 2);
        for (const tr of transfers) {
          assert.equal(tr.result, 'ok');
          assert.equal(tr.tlsVersion, version);
        }
        // JSSE caches sessions by host and port, so a data connection may resume an earlier one that happened to use
        // the same passive port; the first one cannot, and it went through on the exception alone.
        assert.equal(transfers[0]?.resumed, false, 'the first data connection resumed nothing');
        const exempt = logs.filter((l) => l.event === 'data_session_reuse_override');
        assert.equal(exempt.length, 1, 'one line at login');
        assert.equal(exempt[0]?.user, EXEMPT.name);
        assert.equal(exempt[0]?.requireDataSessionReuse, false);
        assert.equal(exempt[0]?.level, 40, 'a warning');
        assert.equal(logs.some((l) => l.event === 'data_connection_refused'), false);
      });
    }
  });

  test('a user with requireDataSessionReuse: true is held to it on a server that has it off', async () => {
    const strict: TestUser = { ...STRICT, requireDataSessionReuse: true };
    const t = await startTestServer({ users: [strict, { name: 'other', password: 'other-secret' }], config: { tls: { requireDataSessionReuse: false } } });
    try {
      const refused = await batch(t, strict, 'TLSv1.3');
      assert.deepEqual(refused.map((s) => `${s.op} ${s.code}`), ['STOR 425']);
      assert.ok(t.logs().some((l) => l.event === 'data_session_reuse_override' && l.user === strict.name && l.requireDataSessionReuse === true));
      const other = await batch(t, { name: 'other', password: 'other-secret' }, 'TLSv1.3');
      assert.equal(other.filter((s) => s.ok).length, Object.keys(FILES).length * 2 + 1, JSON.stringify(other));
    } finally {
      await t.close();
    }
  });
});
