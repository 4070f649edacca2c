import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AuditLog, type AuditLogOptions } from '../../src/audit/audit-log.js';
import { canonicalJson, recordHash, resolveAuditPaths } from '../../src/audit/chain.js';
import { orderAuditFiles, verifyAuditFile } from '../../src/audit/verify.js';
import { defaultConfig } from '../../src/config/schema.js';

let root: string;
let keyFile: string;
let counter = 0;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ftpsd-audit-'));
  keyFile = join(root, 'keys', 'audit.key');
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function newLog(overrides: Partial<AuditLogOptions> = {}): AuditLog {
  return new AuditLog({ file: join(root, 'logs', `audit-${++counter}.log`), hmacKeyFile: keyFile, checkpointEvery: 100, rotateBytes: 64 * 1024 * 1024, ...overrides });
}

async function writeRecords(log: AuditLog, n: number, from = 1): Promise<void> {
  for (let i = from; i < from + n; i++) log.append('login', { user: `user${i}`, ip: '192.0.2.1', ok: i % 7 !== 0, bytes: i * 1000 });
}

async function lines(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '');
}

describe('AuditLog and verifyAuditFile', () => {
  let file: string;

  before(async () => {
    const log = newLog();
    file = log.file;
    await writeRecords(log, 250);
    await log.close();
  });

  it('writes a verifiable chain with a checkpoint every N records', async () => {
    const all = await lines(file);
    assert.equal(all.length, 253, '250 records, checkpoints after 100 and 200, and one at close');
    const first = JSON.parse(all[0]!) as Record<string, unknown>;
    assert.deepEqual(Object.keys(first), ['seq', 'time', 'event', 'user', 'ip', 'ok', 'bytes', 'prev', 'hash']);
    assert.equal(first.seq, 1);
    assert.equal(first.prev, '0'.repeat(64));
    const cp = JSON.parse(all[100]!) as Record<string, unknown>;
    assert.equal(cp.event, 'checkpoint');
    assert.equal(cp.upto, 100);
    assert.match(String(cp.hmac), /^[0-9a-f]{64}$/);
    assert.deepEqual(await verifyAuditFile(file, keyFile, { checkpointEvery: 100 }), {
      ok: true,
      records: 250,
      checkpoints: 3,
      checkpointsVerified: true,
      lastSeq: 253,
      lastHash: (JSON.parse(all[252]!) as { hash: string }).hash,
    });
    const noKey = await verifyAuditFile(file);
    assert.equal(noKey.ok && noKey.checkpointsVerified, false);
  });

  it('points at an edited record', async () => {
    const all = await lines(file);
    all[56] = all[56]!.replace('"user":"user57"', '"user":"mallory"');
    const edited = join(root, 'edited.log');
    await writeFile(edited, `${all.join('\n')}\n`);
    const result = await verifyAuditFile(edited, keyFile);
    assert.equal(result.ok, false);
    assert.ok(!result.ok);
    assert.equal(result.line, 57);
    assert.equal(result.seq, 57);
    assert.match(result.problem, /hash mismatch/);
  });

  it('points at the gap a deleted record leaves', async () => {
    const all = await lines(file);
    all.splice(119, 1); // seq 120
    const cut = join(root, 'cut.log');
    await writeFile(cut, `${all.join('\n')}\n`);
    const result = await verifyAuditFile(cut);
    assert.ok(!result.ok);
    assert.equal(result.line, 120);
    assert.equal(result.seq, 121);
    assert.match(result.problem, /seq gap: expected 120, found 121/);
  });

  it('reports unparsable lines and a broken prev link', async () => {
    const all = await lines(file);
    const garbled = join(root, 'garbled.log');
    await writeFile(garbled, `${[...all.slice(0, 9), 'not json', ...all.slice(10)].join('\n')}\n`);
    const r1 = await verifyAuditFile(garbled);
    assert.ok(!r1.ok);
    assert.equal(r1.line, 10);
    assert.equal(r1.seq, undefined);
    assert.match(r1.problem, /not valid JSON/);

    // Record 30 rewritten with a fresh, self-consistent hash: its own hash checks out, the link to 29 does not.
    const rec = JSON.parse(all[29]!) as Record<string, unknown>;
    rec.prev = 'f'.repeat(64);
    rec.hash = recordHash(rec);
    const relinked = join(root, 'relinked.log');
    await writeFile(relinked, `${[...all.slice(0, 29), JSON.stringify(rec), ...all.slice(30)].join('\n')}\n`);
    const r2 = await verifyAuditFile(relinked);
    assert.ok(!r2.ok);
    assert.equal(r2.line, 30);
    assert.match(r2.problem, /chain broken/);
  });

  it('fails checkpoints under the wrong key', async () => {
    const otherKey = join(root, 'other.key');
    await writeFile(otherKey, `${'ab'.repeat(32)}\n`);
    const result = await verifyAuditFile(file, otherKey);
    assert.ok(!result.ok);
    assert.equal(result.line, 101);
    assert.equal(result.seq, 101);
    assert.match(result.problem, /checkpoint HMAC does not verify/);
  });

  it('catches a rewritten tail with fresh hashes only through the keyed checkpoints', async () => {
    const records = (await lines(file)).map((l) => JSON.parse(l) as Record<string, unknown>);
    // Someone without the key edits record 150 and recomputes every hash after it.
    records[149]!.user = 'mallory';
    for (let i = 149; i < records.length; i++) {
      if (i > 0) records[i]!.prev = records[i - 1]!.hash;
      records[i]!.hash = recordHash(records[i]!);
    }
    const rewritten = join(root, 'rewritten.log');
    await writeFile(rewritten, `${records.map((r) => JSON.stringify(r)).join('\n')}\n`);
    assert.equal((await verifyAuditFile(rewritten)).ok, true, 'the hash chain alone cannot tell');
    const withKey = await verifyAuditFile(rewritten, keyFile);
    assert.ok(!withKey.ok);
    assert.equal(withKey.seq, 202, 'the first checkpoint after the edit');
    assert.match(withKey.problem, /checkpoint HMAC/);
    // Dropping the checkpoints to hide that is caught by the interval check.
    const stripped = join(root, 'stripped.log');
    const kept = records.filter((r) => r.event !== 'checkpoint' || (r.seq as number) < 150);
    let prev: string | null = null;
    let seq = 0;
    for (const r of kept) {
      r.seq = ++seq;
      if (prev !== null) r.prev = prev;
      r.hash = recordHash(r);
      prev = r.hash as string;
    }
    await writeFile(stripped, `${kept.map((r) => JSON.stringify(r)).join('\n')}\n`);
    const r3 = await verifyAuditFile(stripped, keyFile, { checkpointEvery: 100 });
    assert.ok(!r3.ok);
    assert.match(r3.problem, /more than 100 records without a checkpoint/);
  });

  it('creates the key file with mode 0600 outside the log directory', async () => {
    const s = await stat(keyFile);
    assert.equal(s.mode & 0o777, 0o600);
    assert.match((await readFile(keyFile, 'utf8')).trim(), /^[0-9a-f]{64}$/);
    const c = defaultConfig();
    const paths = resolveAuditPaths({ ...c, log: { ...c.log, auditFile: 'logs/audit.log' } }, '/srv/ftpsd');
    assert.deepEqual(paths, { file: '/srv/ftpsd/logs/audit.log', hmacKeyFile: '/srv/ftpsd/config/audit.key' });
    assert.equal(resolveAuditPaths(c, '/srv/ftpsd'), null);
  });

  it('refuses field and event names that belong to the log itself', async () => {
    const log = newLog();
    assert.throws(() => log.append('login', { hash: 'x' }), /reserved/);
    assert.throws(() => log.append('login', { seq: 1 }), /reserved/);
    assert.throws(() => log.append('checkpoint', {}), /reserved/);
    await log.close();
    assert.throws(() => log.append('login', {}), /closed/);
  });

  it('hashes a canonical form that does not depend on key order', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: 'x' }, u: undefined }), '{"a":{"c":"x","d":[1,{"y":2,"z":1}]},"b":1}');
  });
});

describe('AuditLog across restarts and rotation', () => {
  it('continues the chain after a restart', async () => {
    const first = newLog({ checkpointEvery: 4 });
    await writeRecords(first, 10);
    await first.close();
    const head = first.head;
    const second = newLog({ file: first.file, checkpointEvery: 4 });
    assert.deepEqual(second.head, head);
    await writeRecords(second, 10, 11);
    await second.close();
    const result = await verifyAuditFile(first.file, keyFile, { checkpointEvery: 4 });
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.records, 20);
  });

  it('covers records left without a checkpoint by a crash, and drops a torn last line', async () => {
    const crashed = newLog({ checkpointEvery: 100 });
    await writeRecords(crashed, 5);
    await crashed.flush(); // the process dies here: no close, no final checkpoint
    await appendFile(crashed.file, '{"seq":6,"time":"2025-01-');
    const restarted = newLog({ file: crashed.file, checkpointEvery: 100 });
    assert.equal(restarted.head.seq, 6, 'five records and the checkpoint written at startup');
    restarted.append('login', { user: 'after' });
    await restarted.close();
    const all = await lines(crashed.file);
    assert.equal(JSON.parse(all[5]!).event, 'checkpoint');
    const result = await verifyAuditFile(crashed.file, keyFile, { checkpointEvery: 100 });
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.records, 6);
    await crashed.close();
  });

  it('refuses to continue a file that does not end with a record', async () => {
    const file = join(root, 'logs', 'foreign.log');
    await writeFile(file, 'hello\nworld\n');
    assert.throws(() => newLog({ file }), /does not end with an audit record/);
  });

  it('rotates by size and keeps one chain across the files', async () => {
    const log = newLog({ rotateBytes: 2000, checkpointEvery: 7 });
    const dir = join(root, 'logs');
    await writeRecords(log, 60);
    await log.close();
    const rotated = (await readdir(dir)).filter((n) => n.startsWith(`${basename(log.file)}.`)).map((n) => join(dir, n));
    assert.ok(rotated.length >= 5, `expected several rotated files, got ${rotated.length}`);
    const files = await orderAuditFiles([log.file, ...rotated]); // a glob lists the current file first
    assert.equal(files.at(-1), log.file);
    for (const f of files) assert.ok((await stat(f)).size < 2000 + 400, `${f} stays near rotateBytes`);
    for (const f of files.slice(1)) {
      const first = JSON.parse((await lines(f))[0]!) as Record<string, unknown>;
      assert.equal(first.event, 'rotate');
    }
    const result = await verifyAuditFile(files, keyFile, { checkpointEvery: 7 });
    assert.ok(result.ok, JSON.stringify(result));
    const rotates = (await Promise.all(files.map(lines))).flat().filter((l) => l.includes('"event":"rotate"')).length;
    assert.equal(result.records, 60 + rotates);

    const missing = await verifyAuditFile([...files.slice(0, 2), ...files.slice(3)], keyFile);
    assert.ok(!missing.ok, 'a removed rotated file breaks the chain');
    assert.equal(missing.file, files[3]);
    assert.equal(missing.line, 1);
    assert.match(missing.problem, /seq gap/);
  });
});
