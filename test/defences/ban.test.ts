import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { runProcess } from '../helpers/clients.js';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, writeHomeFile, type TestServer } from '../helpers/server.js';

// The defender end to end: scored misbehaviour from one address leads to a ban, a banned address is refused at
// accept with 421 before any TLS, its open sessions are closed, bans survive a restart and are managed with
// `ftpsd ban`, and allow-listed networks are never banned. Each case attacks from its own 127.0.0.x address so one
// test's ban never touches another's.

const ALICE = { name: 'alice', password: 'alice-secret' };

/** Reads the first reply of a plain TCP connection from `localAddress`; null when it closed without one. */
async function greetingFrom(port: number, localAddress: string): Promise<{ code: number; text: string; closedSoon: boolean } | null> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  socket.on('error', () => undefined);
  let buf = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (buf += d));
  const closed = once(socket, 'close').then(() => true);
  const line = await Promise.race([
    (async () => {
      for (let i = 0; i < 300 && !buf.includes('\r\n'); i++) await sleep(10);
      return buf;
    })(),
    closed.then(() => buf),
  ]);
  const closedSoon = await Promise.race([closed, sleep(2_000).then(() => false)]);
  socket.destroy();
  const m = /^(\d{3}) (.*)\r\n/.exec(line);
  return m === null ? null : { code: Number(m[1]), text: m[2] ?? '', closedSoon };
}

/** `n` wrong passwords for alice from `ip`, over as many sessions as limits.maxFailedLoginsPerSession requires. */
async function badLogins(t: TestServer, ip: string, n: number): Promise<number[]> {
  const codes: number[] = [];
  while (codes.length < n) {
    const c = await ControlClient.connect(t.port, '127.0.0.1', ip);
    try {
      const hello = await c.read();
      if (hello?.code !== 220) {
        codes.push(hello?.code ?? 0);
        return codes;
      }
      assert.equal((await c.authTls()).code, 234);
      for (let i = 0; i < 3 && codes.length < n && !c.closed; i++) {
        assert.equal((await c.send(`USER ${ALICE.name}`)).code, 331);
        c.write('PASS wrong-password\r\n');
        codes.push((await c.read())?.code ?? 0);
      }
    } finally {
      c.close();
    }
  }
  return codes;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('defender bans', () => {
  let t: TestServer;
  let stateDir: string;
  let storeFile: string;
  let configFile: string;

  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'ftpsd-defences-bans-'));
    storeFile = join(stateDir, 'ftpsd.db');
    configFile = join(stateDir, 'ftpsd.yaml');
    await writeFile(configFile, `users:\n  file: ${join(stateDir, 'users.yaml')}\nstore:\n  path: ${storeFile}\ndefender:\n  allowList: ["127.0.0.8/32"]\n`);
    t = await startTestServer({
      users: [ALICE],
      config: { store: { path: storeFile }, defender: { allowList: ['127.0.0.8/32'], fileWatchIntervalMs: 100, saveDelayMs: 0 } },
    });
    await writeHomeFile(t, 'alice', 'file.txt', 'data\n');
  });
  after(async () => {
    await t.close();
    await rm(stateDir, { recursive: true, force: true });
  });

  /** `ftpsd ban ...` as an operator runs it, against the same store. */
  function banCli(...args: string[]) {
    return runProcess(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'ban', ...args, '--config', configFile], { timeoutMs: 20_000 });
  }

  it('10 failed logins from one address ban it; its open session is closed and the next connection gets 421 before TLS', async () => {
    const ip = '127.0.0.5';
    // A session of the same address that logged in before the attack: the ban closes it.
    const victim = await ControlClient.connect(t.port, '127.0.0.1', ip);
    assert.equal((await victim.read())?.code, 220);
    assert.equal((await victim.login(ALICE.name, ALICE.password)).code, 230);

    const codes = await badLogins(t, ip, 10);
    assert.equal(codes.length, 10);
    assert.ok(codes.slice(0, 9).every((c) => c === 530), codes.join(','));

    const banLine = await waitFor('the ban log line', () => t.logs().find((l) => l.msg === 'defender ban' && l.ip === ip));
    assert.equal(banLine.event, 'ban');
    assert.equal(banLine.offences, 1);
    assert.equal(banLine.reason, 'failedLogin');

    const goodbye = await victim.read();
    assert.equal(goodbye?.code, 421, 'the open session of the banned address is told and closed');
    await waitFor('the victim session to close', () => (victim.closed ? true : undefined));

    const refused = await greetingFrom(t.port, ip);
    assert.equal(refused?.code, 421, 'the greeting itself is 421, on the plain socket');
    assert.match(refused.text, /blocked/);
    assert.equal(refused.closedSoon, true);
    assert.ok(t.logs().some((l) => l.event === 'connection_refused' && l.ip === ip && l.reason === 'banned'));

    // Nobody else is affected.
    const other = await greetingFrom(t.port, '127.0.0.6');
    assert.equal(other?.code, 220);
  });

  it('a connection from another address to a session\'s passive port is refused, scored, logged, and repeated it bans', async () => {
    const attacker = '127.0.0.2';
    const owner = await ControlClient.loggedIn(t.port, ALICE.name, ALICE.password);
    try {
      for (let i = 1; i <= 4; i++) {
        const port = await owner.epsv();
        const hijack = net.connect({ port, host: '127.0.0.1', localAddress: attacker });
        hijack.on('error', () => undefined);
        await once(hijack, 'close');
        const r = await owner.send('RETR file.txt');
        assert.equal(r.code, 150);
        const final = await owner.read();
        assert.equal(final?.code, 425, 'the owner learns its data connection was taken');
        assert.match(final.text, /another address/);
        const refusals = t.logs().filter((l) => l.event === 'data_connection_refused' && l.audit !== true && l.peer === attacker);
        assert.equal(refusals.length, i, 'each attempt is logged with the attacker address');
        const scores = t.logs().filter((l) => l.event === 'defender_score' && l.ip === attacker && l.kind === 'foreignDataConnection');
        assert.equal(scores.length, i, 'each attempt is scored');
      }
      // 4 attempts x 3 points (defender.scores.foreignDataConnection) pass the threshold of 10.
      await waitFor('the attacker ban', () => t.logs().find((l) => l.msg === 'defender ban' && l.ip === attacker));
      assert.equal((await greetingFrom(t.port, attacker))?.code, 421);
      assert.equal((await owner.send('NOOP')).code, 200, 'the victim session from another address is untouched');
    } finally {
      owner.close();
    }
  });

  it('an allow-listed network is never banned, whatever it does', async () => {
    const ip = '127.0.0.8';
    const codes = await badLogins(t, ip, 15);
    assert.ok(codes.every((c) => c === 530), codes.join(','));
    assert.equal((await greetingFrom(t.port, ip))?.code, 220);
    assert.ok(!t.logs().some((l) => l.msg === 'defender ban' && l.ip === ip));
    const r = await banCli('add', ip);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /allowList/);
  });

  it('ftpsd ban add/list/remove change the bans in the store, and the running server follows them', async () => {
    const ip = '127.0.0.9';
    assert.equal((await greetingFrom(t.port, ip))?.code, 220);
    const added = await banCli('add', ip, '--minutes', '5', '--reason', 'operator');
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /^banned 127\.0\.0\.9 until /);
    await waitFor('the server to pick up the ban', async () => ((await greetingFrom(t.port, ip))?.code === 421 ? true : undefined));

    const listed = await banCli('list');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^127\.0\.0\.9\s+\S+Z\s+\S+.*\s+operator$/m);
    assert.match(listed.stdout, /^127\.0\.0\.5\s+.*failedLogin$/m, 'bans the server imposed are in the same store');

    const removed = await banCli('remove', ip);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /unbanned 127\.0\.0\.9/);
    await waitFor('the server to lift the ban', async () => ((await greetingFrom(t.port, ip))?.code === 220 ? true : undefined));
    assert.doesNotMatch((await banCli('list')).stdout, /^127\.0\.0\.9\s/m);
  });

  it('bans survive a restart on the same store', async () => {
    // Stop the server (it saves its bans), then start a new one on the same store.
    await t.close();
    const next = await startTestServer({ users: [ALICE], config: { store: { path: storeFile } } });
    t = next;
    assert.ok(next.logs().some((l) => l.event === 'bans_loaded'));
    assert.equal((await greetingFrom(next.port, '127.0.0.5'))?.code, 421, 'the failed-login ban is still in force');
    assert.equal((await greetingFrom(next.port, '127.0.0.2'))?.code, 421, 'the passive-port hijacker too');
    assert.equal((await greetingFrom(next.port, '127.0.0.6'))?.code, 220);
  });
});
