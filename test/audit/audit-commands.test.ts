import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Command } from 'commander';
import { AuditLog } from '../../src/audit/audit-log.js';
import { registerAuditCommands } from '../../src/cli/audit-commands.js';
import { loadConfig } from '../../src/config/load.js';

let dir: string;
let logFile: string;
let keyFile: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ftpsd-audit-cli-'));
  logFile = join(dir, 'logs', 'audit.log');
  keyFile = join(dir, 'conf', 'audit.key');
  const log = new AuditLog({ file: logFile, hmacKeyFile: keyFile, checkpointEvery: 10, rotateBytes: 3000 });
  for (let i = 1; i <= 30; i++) log.append('transfer', { user: 'bob', path: `/f${i}`, bytes: i });
  await log.close();
  await writeFile(join(dir, 'ftpsd.yaml'), 'users:\n  file: conf/users.yaml\nlog:\n  auditFile: logs/audit.log\n  auditCheckpointEvery: 10\n');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(...args: string[]): Promise<{ out: string[]; err: string[]; code: number }> {
  const out: string[] = [];
  const err: string[] = [];
  let code = 0;
  const program = new Command('ftpsd').exitOverride();
  registerAuditCommands(program, {
    loadConfig: (file) => loadConfig(file, {}, dir),
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    setExitCode: (c) => void (code = c),
  });
  await program.parseAsync(args, { from: 'user' });
  return { out, err, code };
}

describe('ftpsd audit verify', () => {
  it('reports an intact chain across rotated files given in glob order', async () => {
    const names = (await readdir(join(dir, 'logs'))).sort().map((n) => join(dir, 'logs', n));
    assert.ok(names.length > 1, 'the log rotated');
    const r = await run('audit', 'verify', ...names, '--key', keyFile);
    assert.equal(r.code, 0, r.out.join('\n'));
    assert.match(r.out[0]!, /^audit chain intact: \d+ records, \d+ checkpoints$/);
    const viaConfig = await run('audit', 'verify', ...names, '--config', join(dir, 'ftpsd.yaml'));
    assert.deepEqual(viaConfig.out, r.out, 'the key file is found through the configuration');
    assert.deepEqual(viaConfig.err, []);
    const noKey = await run('audit', 'verify', ...names);
    assert.equal(noKey.code, 0);
    assert.match(noKey.err[0]!, /not checked/);
  });

  it('reports the line and seq of an edited record with exit code 1', async () => {
    const lines = (await readFile(logFile, 'utf8')).split('\n');
    const target = lines.findIndex((l) => l.includes('"event":"transfer"'));
    const seq = (JSON.parse(lines[target]!) as { seq: number }).seq;
    lines[target] = lines[target]!.replace('"user":"bob"', '"user":"eve"');
    const edited = join(dir, 'edited.log');
    await writeFile(edited, lines.join('\n'));
    const r = await run('audit', 'verify', edited);
    assert.equal(r.code, 1);
    assert.deepEqual(r.out, [`audit chain broken at line ${target + 1} (seq ${seq}): hash mismatch: the record was altered`]);
  });

  it('fails with a clear message when the key file is missing', async () => {
    const r = await run('audit', 'verify', logFile, '--key', join(dir, 'nope.key'));
    assert.equal(r.code, 1);
    assert.match(r.err[0]!, /audit key file .*nope\.key cannot be read/);
  });
});
