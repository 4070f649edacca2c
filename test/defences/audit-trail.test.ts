import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runProcess } from '../helpers/clients.js';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, writeHomeFile } from '../helpers/server.js';

// A real session writes a hash-chained audit file that `ftpsd audit verify` reports intact; one edited record and one
// deleted record are each pinpointed by line.

const ALICE = { name: 'alice', password: 'alice-secret' };
const ATTACKER = '127.0.0.31';

/** `ftpsd audit verify` as shipped (bin/ftpsd.js runs the build in dist/); from source when there is no build. */
function verifyCli(...args: string[]) {
  const cli = existsSync('dist/cli.js') ? ['bin/ftpsd.js'] : ['--import', 'tsx', 'src/cli.ts'];
  return runProcess(process.execPath, [...cli, 'audit', 'verify', ...args], { timeoutMs: 20_000 });
}

type AuditRecord = Record<string, unknown> & { seq: number; event: string };

describe('audit trail of a real session', () => {
  let dir: string;
  let auditFile: string;
  let keyFile: string;
  let lines: string[];
  const upload = randomBytes(100_000);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ftpsd-defences-audit-'));
    auditFile = join(dir, 'audit.log');
    keyFile = join(dir, 'audit.key');
    const t = await startTestServer({
      users: [ALICE],
      config: {
        log: { auditFile, auditHmacKeyFile: keyFile, auditCheckpointEvery: 5 },
        defender: { threshold: 3 },
      },
    });
    try {
      await writeHomeFile(t, 'alice', 'down.txt', 'download me\n');
      const c = await ControlClient.connect(t.port);
      assert.equal((await c.read())?.code, 220);
      assert.equal((await c.login(ALICE.name, ALICE.password)).code, 230);
      let port = await c.epsv();
      let data = c.dataConnect(port);
      assert.equal((await c.send('STOR up.bin')).code, 150);
      await data.upload(upload);
      assert.equal((await c.read())?.code, 226);
      port = await c.epsv();
      data = c.dataConnect(port);
      assert.equal((await c.send('RETR down.txt')).code, 150);
      assert.equal((await data.received).toString(), 'download me\n');
      assert.equal((await c.read())?.code, 226);
      assert.equal((await c.send('QUIT')).code, 221);

      // Three failed logins from another address: failures, then a ban (defender.threshold 3).
      const bad = await ControlClient.connect(t.port, '127.0.0.1', ATTACKER);
      assert.equal((await bad.read())?.code, 220);
      assert.equal((await bad.authTls()).code, 234);
      for (let i = 0; i < 3 && !bad.closed; i++) {
        await bad.send(`USER ${ALICE.name}`).catch(() => null);
        bad.write('PASS wrong\r\n');
        await bad.read().catch(() => null);
      }
      bad.close();
    } finally {
      await t.close(); // flushes the audit file
    }
    lines = (await readFile(auditFile, 'utf8')).split('\n').filter((l) => l !== '');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const records = () => lines.map((l) => JSON.parse(l) as AuditRecord);

  it('records connect, TLS, login, transfers with SHA-256, the failed logins and the ban, chained', () => {
    const events = records().map((r) => r.event);
    for (const e of ['connect', 'tls', 'login', 'transfer', 'login_failed', 'ban', 'disconnect', 'checkpoint']) {
      assert.ok(events.includes(e), `an audit record for ${e}: ${events.join(',')}`);
    }
    const up = records().find((r) => r.event === 'transfer' && r.direction === 'upload');
    assert.equal(up?.sha256, createHash('sha256').update(upload).digest('hex'));
    assert.equal(up.bytes, upload.length);
    const ban = records().find((r) => r.event === 'ban');
    assert.equal(ban?.ip, ATTACKER);
    assert.equal(records().filter((r) => r.event === 'login_failed' && r.ip === ATTACKER).length, 3);
    records().forEach((r, i) => {
      assert.equal(r.seq, i + 1);
      if (i > 0) assert.equal(r.prev, records()[i - 1]!.hash);
    });
  });

  it('ftpsd audit verify reports the chain intact, with the checkpoint key', async () => {
    const r = await verifyCli(auditFile, '--key', keyFile);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const n = records().filter((x) => x.event !== 'checkpoint').length;
    assert.match(r.stdout, new RegExp(`^audit chain intact: ${n} records, \\d+ checkpoints`));
  });

  it('an edited record is reported at its line', async () => {
    const target = records().findIndex((r) => r.event === 'transfer' && r.direction === 'upload');
    assert.ok(target > 0);
    const edited = [...lines];
    edited[target] = edited[target]!.replace(/"bytes":\d+/, '"bytes":1');
    assert.notEqual(edited[target], lines[target]);
    const file = join(dir, 'edited.log');
    await writeFile(file, edited.join('\n') + '\n');
    const r = await verifyCli(file);
    assert.equal(r.code, 1);
    assert.match(r.stdout, new RegExp(`^audit chain broken at line ${target + 1} \\(seq ${target + 1}\\): hash mismatch`));
  });

  it('a deleted record is reported at the gap', async () => {
    const target = records().findIndex((r) => r.event === 'ban');
    assert.ok(target > 0 && target < lines.length - 1);
    const cut = lines.filter((_, i) => i !== target);
    const file = join(dir, 'deleted.log');
    await writeFile(file, cut.join('\n') + '\n');
    const r = await verifyCli(file);
    assert.equal(r.code, 1);
    assert.match(r.stdout, new RegExp(`^audit chain broken at line ${target + 1} \\(seq ${target + 2}\\): seq gap: expected ${target + 1}, found ${target + 2}`));
  });
});
