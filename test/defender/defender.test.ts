import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultConfig } from '../../src/config/schema.js';
import { type BanInfo, Defender, type DefenderConfig, DefenderError } from '../../src/defender/defender.js';
import { createLogger } from '../../src/log/logger.js';

const MINUTE = 60_000;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ftpsd-defender-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Harness {
  defender: Defender;
  clock: { t: number };
  logs: Record<string, unknown>[];
  bans: BanInfo[];
  file: string;
}

let fileCounter = 0;
const open: Defender[] = [];
after(() => {
  for (const d of open) d.close();
});

/** The file watcher does not keep the process alive (as in the server), so this wait holds a timer that does. */
function waitEvent(emitter: EventEmitter, name: string, ms = 5000): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${name}' event within ${ms} ms`)), ms);
    emitter.once(name, (...args: unknown[]) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

function config(overrides: Partial<DefenderConfig> = {}): DefenderConfig {
  return { ...defaultConfig().defender, fileWatchIntervalMs: 0, saveDelayMs: 0, threshold: 3, windowMs: 5 * MINUTE, banMs: 10 * MINUTE, banMultiplier: 2, maxBanMs: 60 * MINUTE, ...overrides };
}

function harness(overrides: Partial<DefenderConfig> = {}, file = join(dir, `bans-${++fileCounter}.json`), clock = { t: Date.parse('2025-01-01T00:00:00Z') }): Harness {
  const logs: Record<string, unknown>[] = [];
  const log = createLogger('debug', { write: (s: string) => void logs.push(JSON.parse(s) as Record<string, unknown>) });
  const defender = new Defender({ config: config(overrides), file, log, now: () => clock.t });
  open.push(defender);
  const bans: BanInfo[] = [];
  defender.on('ban', (b) => bans.push(b));
  return { defender, clock, logs, bans, file };
}

describe('Defender scoring', () => {
  it('bans an IP whose score reaches the threshold within the window, once, with one log line', () => {
    const h = harness();
    assert.equal(h.defender.record('198.51.100.7', 'failedLogin', { user: 'bob' }), null);
    assert.equal(h.defender.record('198.51.100.7', 'unknownUser'), null);
    assert.equal(h.defender.isBanned('198.51.100.7'), false);
    const ban = h.defender.record('198.51.100.7', 'failedLogin', { user: 'bob' });
    assert.ok(ban);
    assert.equal(ban.until, h.clock.t + 10 * MINUTE);
    assert.equal(h.defender.isBanned('198.51.100.7'), true);
    assert.equal(h.defender.isBanned('::ffff:198.51.100.7'), true, 'a dual-stack listener reports IPv4 clients mapped');
    assert.equal(h.defender.isBanned('198.51.100.8'), false);
    assert.deepEqual(h.bans, [{ ip: '198.51.100.7', until: ban.until, reason: 'failedLogin', offences: 1 }]);
    // Further events while banned change nothing.
    assert.equal(h.defender.record('198.51.100.7', 'failedLogin'), null);
    const banLines = h.logs.filter((l) => l.msg === 'defender ban');
    assert.equal(banLines.length, 1);
    assert.deepEqual(
      { level: banLines[0]!.level, event: banLines[0]!.event, ip: banLines[0]!.ip, untilIso: banLines[0]!.untilIso, offences: banLines[0]!.offences, reason: banLines[0]!.reason, details: banLines[0]!.details },
      { level: 40, event: 'ban', ip: '198.51.100.7', untilIso: new Date(ban.until).toISOString(), offences: 1, reason: 'failedLogin', details: { user: 'bob' } },
    );
  });

  it('weights events by their configured score', () => {
    const h = harness();
    assert.ok(h.defender.record('2001:db8::7', 'foreignDataConnection'), 'a score of 3 reaches the threshold of 3 at once');
    assert.equal(h.defender.isBanned('2001:db8::7'), true);
    const zero = harness({ scores: { ...config().scores, protocolViolation: 0 } });
    for (let i = 0; i < 10; i++) assert.equal(zero.defender.record('192.0.2.1', 'protocolViolation'), null);
    assert.equal(zero.defender.isBanned('192.0.2.1'), false);
  });

  it('forgets events older than the window', () => {
    const h = harness();
    h.defender.record('192.0.2.9', 'failedLogin');
    h.defender.record('192.0.2.9', 'failedLogin');
    h.clock.t += 5 * MINUTE + 1;
    assert.equal(h.defender.record('192.0.2.9', 'failedLogin'), null);
    assert.equal(h.defender.isBanned('192.0.2.9'), false);
    h.clock.t += MINUTE;
    assert.equal(h.defender.record('192.0.2.9', 'failedLogin'), null);
    assert.ok(h.defender.record('192.0.2.9', 'failedLogin'), 'three points within five minutes');
  });

  it('lengthens the ban for repeat offenders, up to maxBanMs', () => {
    const h = harness();
    const durations: number[] = [];
    for (let round = 0; round < 5; round++) {
      let ban: BanInfo | null = null;
      for (let i = 0; i < 3; i++) ban = h.defender.record('203.0.113.5', 'failedLogin');
      assert.ok(ban);
      durations.push(ban.until - h.clock.t);
      assert.equal(ban.offences, round + 1);
      h.clock.t = ban.until + 1;
      assert.equal(h.defender.isBanned('203.0.113.5'), false, 'the ban ends on time');
    }
    assert.deepEqual(durations, [10, 20, 40, 60, 60].map((m) => m * MINUTE));
  });

  it('never scores or bans allow-listed addresses', () => {
    const h = harness({ allowList: ['127.0.0.0/8', '2001:db8:a::/48'] });
    for (let i = 0; i < 10; i++) {
      assert.equal(h.defender.record('::ffff:127.0.0.1', 'failedLogin'), null);
      assert.equal(h.defender.record('2001:db8:a::99', 'failedLogin'), null);
    }
    assert.equal(h.defender.isBanned('127.0.0.1'), false);
    assert.throws(() => h.defender.ban('127.0.0.2', MINUTE, 'test'), (e: unknown) => e instanceof DefenderError && e.code === 'allow_listed');
    assert.equal(h.bans.length, 0);
  });

  it('does nothing when disabled', () => {
    const h = harness({ enabled: false });
    for (let i = 0; i < 5; i++) assert.equal(h.defender.record('192.0.2.44', 'failedLogin'), null);
    assert.equal(h.defender.isBanned('192.0.2.44'), false);
  });

  it('forgets the least recently scored IPs past maxTrackedIps', () => {
    const h = harness({ threshold: 2, maxTrackedIps: 2 });
    h.defender.record('192.0.2.1', 'failedLogin');
    h.defender.record('192.0.2.2', 'failedLogin');
    h.defender.record('192.0.2.3', 'failedLogin'); // pushes out 192.0.2.1
    assert.equal(h.defender.record('192.0.2.1', 'failedLogin'), null, 'its earlier point was forgotten');
    assert.ok(h.defender.record('192.0.2.3', 'failedLogin'), 'a remembered IP still reaches the threshold');
    for (const ip of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) h.defender.ban(ip, MINUTE, 'manual');
    assert.deepEqual(
      h.defender.list().map((b) => b.ip).sort(),
      ['198.51.100.2', '198.51.100.3'],
      'the oldest ban is dropped first',
    );
    assert.ok(h.logs.some((l) => l.msg === 'defender table full'));
  });

  it('prunes expired bans and announces it', () => {
    const h = harness();
    const unbans: unknown[] = [];
    h.defender.on('unban', (u) => unbans.push(u));
    h.defender.ban('192.0.2.77', MINUTE, 'manual');
    h.clock.t += MINUTE;
    h.defender.prune();
    assert.deepEqual(unbans, [{ ip: '192.0.2.77', reason: 'expired' }]);
    assert.deepEqual(h.defender.list(), []);
  });

  it('refuses bad input from the command line', () => {
    const h = harness();
    assert.throws(() => h.defender.ban('999.1.1.1', MINUTE, 'x'), (e: unknown) => e instanceof DefenderError && e.code === 'invalid_ip');
    assert.throws(() => h.defender.ban('192.0.2.1', 0, 'x'), (e: unknown) => e instanceof DefenderError && e.code === 'invalid_duration');
    assert.throws(() => h.defender.unban('nope'), (e: unknown) => e instanceof DefenderError && e.code === 'invalid_ip');
  });
});

describe('Defender persistence', () => {
  it('keeps bans and offence history across a restart, dropping expired bans', async () => {
    const file = join(dir, 'restart.json');
    const clock = { t: Date.parse('2025-02-01T00:00:00Z') };
    const first = harness({}, file, clock);
    for (let i = 0; i < 3; i++) first.defender.record('192.0.2.10', 'failedLogin');
    first.defender.ban('192.0.2.11', 1000, 'short');
    await first.defender.close();
    const saved = JSON.parse(await readFile(file, 'utf8')) as { bans: { ip: string }[] };
    assert.deepEqual(saved.bans.map((b) => b.ip).sort(), ['192.0.2.10', '192.0.2.11']);
    assert.deepEqual((await readdir(dir)).filter((n) => n.endsWith('.tmp')), [], 'no temporary file left behind');

    clock.t += 2000; // the short ban has ended while the server was down
    const second = harness({}, file, clock);
    assert.equal(second.defender.isBanned('192.0.2.10'), true);
    assert.equal(second.defender.isBanned('192.0.2.11'), false);
    assert.deepEqual(second.defender.list().map((b) => b.ip), ['192.0.2.10']);

    clock.t += 10 * MINUTE; // first ban over; offend again
    let ban: BanInfo | null = null;
    for (let i = 0; i < 3; i++) ban = second.defender.record('192.0.2.10', 'failedLogin');
    assert.ok(ban);
    assert.equal(ban.offences, 2);
    assert.equal(ban.until - clock.t, 20 * MINUTE, 'the offence before the restart doubles this ban');
    await second.defender.close();
  });

  it('forgets offences on unban, so the next ban is short again', () => {
    const h = harness();
    h.defender.ban('192.0.2.20', MINUTE, 'manual');
    h.defender.ban('192.0.2.20', MINUTE, 'manual');
    assert.equal(h.defender.list()[0]!.offences, 2);
    assert.equal(h.defender.unban('192.0.2.20'), true);
    assert.equal(h.defender.isBanned('192.0.2.20'), false);
    assert.equal(h.defender.unban('192.0.2.20'), false);
    let ban: BanInfo | null = null;
    for (let i = 0; i < 3; i++) ban = h.defender.record('192.0.2.20', 'failedLogin');
    assert.equal(ban?.offences, 1);
    assert.equal(ban!.until - h.clock.t, 10 * MINUTE);
  });

  it('does not overwrite a bans file it cannot parse', async () => {
    const file = join(dir, 'broken.json');
    await writeFile(file, '{ "bans": [ oops');
    const h = harness({}, file);
    h.defender.ban('192.0.2.30', MINUTE, 'manual');
    await h.defender.close();
    assert.equal(await readFile(file, 'utf8'), '{ "bans": [ oops');
    assert.ok(h.logs.some((l) => l.msg === 'defender bans unreadable'));
  });

  it('applies changes another process makes to the file while running', async () => {
    const file = join(dir, 'shared.json');
    const logs: unknown[] = [];
    const log = createLogger('info', { write: (s: string) => void logs.push(s) });
    const server = new Defender({ config: config({ fileWatchIntervalMs: 20 }), file, log });
    open.push(server);
    // fs.watchFile compares each stat with its first one, taken asynchronously; a change made before that first
    // stat would be its baseline. A server starts watching long before anyone edits the file; a test must wait.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const cli = new Defender({ config: config(), file, log });
    const banned = waitEvent(server, 'ban');
    cli.ban('192.0.2.40', 10 * MINUTE, 'by hand');
    await cli.close();
    const [info] = (await banned) as [BanInfo];
    assert.equal(info.ip, '192.0.2.40');
    assert.equal(server.isBanned('192.0.2.40'), true);

    // The server bans someone else meanwhile; a later CLI unban must not lose that ban.
    for (let i = 0; i < 3; i++) server.record('192.0.2.41', 'failedLogin');
    const cli2 = new Defender({ config: config(), file, log });
    const unbanned = waitEvent(server, 'unban');
    cli2.unban('192.0.2.40');
    await cli2.close();
    assert.deepEqual(await unbanned, [{ ip: '192.0.2.40', reason: 'file' }]);
    assert.equal(server.isBanned('192.0.2.40'), false);
    assert.equal(server.isBanned('192.0.2.41'), true);
    await server.close();
    const saved = JSON.parse(await readFile(file, 'utf8')) as { bans: { ip: string }[] };
    assert.deepEqual(saved.bans.map((b) => b.ip), ['192.0.2.41']);
  });
});
