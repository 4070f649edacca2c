import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Command } from 'commander';
import { registerBanCommands } from '../../src/cli/ban-commands.js';
import { loadConfig } from '../../src/config/load.js';
import { Defender } from '../../src/defender/defender.js';
import { createLogger } from '../../src/log/logger.js';
import { loadBans, storeBanPersistence } from '../../src/store/ban-repo.js';
import { openStore } from '../../src/store/open-store.js';

let dir: string;
let configFile: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ftpsd-ban-cli-'));
  configFile = join(dir, 'ftpsd.yaml');
  await writeFile(configFile, 'users:\n  file: conf/users.yaml\ndefender:\n  allowList: ["10.0.0.0/8"]\n  banMs: 600000\n');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});


async function run(...args: string[]): Promise<{ out: string[]; err: string[]; code: number }> {
  const out: string[] = [];
  const err: string[] = [];
  let code = 0;
  const program = new Command('ftpsd').exitOverride();
  registerBanCommands(program, {
    loadConfig: (file) => loadConfig(file, {}, dir),
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    setExitCode: (c) => void (code = c),
  });
  await program.parseAsync([...args, '--config', configFile], { from: 'user' });
  return { out, err, code };
}

describe('ftpsd ban', () => {
  it('adds, lists and removes bans in the store', async () => {
    const added = await run('ban', 'add', '::ffff:192.0.2.5', '--minutes', '5', '--reason', 'scanner');
    assert.equal(added.code, 0, added.err.join('\n'));
    assert.match(added.out[0]!, /^banned 192\.0\.2\.5 until \d{4}-\d\d-\d\dT.*Z \(5m, offence 1\)$/);
    const store = await openStore({ path: join(dir, 'data', 'ftpsd.db'), url: '' });
    try {
      assert.deepEqual((await loadBans(store.db, Date.now())).bans.map((b) => [b.ip, b.reason]), [['192.0.2.5', 'scanner']]);
    } finally {
      await store.close();
    }

    await run('ban', 'add', '2001:db8::1'); // default duration: defender.banMs
    const listed = await run('ban', 'list');
    assert.equal(listed.code, 0);
    assert.equal(listed.out[0], `bans in: ${join(dir, 'data', 'ftpsd.db')}`);
    assert.match(listed.out[1]!, /^IP\s+UNTIL \(UTC\)\s+LEFT\s+OFFENCES\s+REASON$/);
    assert.match(listed.out[2]!, /^192\.0\.2\.5\s+\S+Z\s+(4m 5\ds|5m)\s+1\s+scanner$/);
    assert.match(listed.out[3]!, /^2001:db8::1\s+\S+Z\s+(9m 5\ds|10m)\s+1\s+manual$/);

    const removed = await run('ban', 'remove', '192.0.2.5');
    assert.deepEqual(removed.out, ['unbanned 192.0.2.5']);
    const again = await run('ban', 'remove', '192.0.2.5');
    assert.equal(again.code, 0);
    assert.match(again.out[0]!, /was not banned/);
    await run('ban', 'rm', '2001:db8::1');
    assert.deepEqual((await run('ban', 'list')).out.slice(1), ['no active bans']);
  });

  it('refuses a bad address, an allow-listed one and a bad duration with a non-zero exit', async () => {
    const bad = await run('ban', 'add', '300.1.2.3');
    assert.equal(bad.code, 1);
    assert.deepEqual(bad.err, ['not an IP address: 300.1.2.3']);
    const allowed = await run('ban', 'add', '10.1.2.3');
    assert.equal(allowed.code, 1);
    assert.match(allowed.err[0]!, /10\.1\.2\.3 is in defender\.allowList/);
    const minutes = await run('ban', 'add', '192.0.2.9', '--minutes', 'soon');
    assert.equal(minutes.code, 1);
    assert.match(minutes.err[0]!, /--minutes must be a positive number/);
    assert.equal((await run('ban', 'remove', 'nonsense')).code, 1);
    assert.deepEqual((await run('ban', 'list')).out.slice(1), ['no active bans']);
  });

  it('reaches a running server through the store', async () => {
    const { config } = loadConfig(configFile, {}, dir);
    const store = await openStore({ path: join(dir, 'data', 'ftpsd.db'), url: '' });
    const server = new Defender({ config: { ...config.defender, fileWatchIntervalMs: 20 }, persistence: storeBanPersistence(store.db, store.location), log: createLogger('silent') });
    try {
      await server.ready;
      const banned = new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no ban event within 5 s')), 5000);
        server.once('ban', (b) => {
          clearTimeout(timer);
          resolve(b.ip);
        });
      });
      await run('ban', 'add', '198.51.100.77');
      assert.equal(await banned, '198.51.100.77');
      assert.equal(server.isBanned('198.51.100.77'), true);
    } finally {
      await server.close();
      await store.close();
    }
  });
});
