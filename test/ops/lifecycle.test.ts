import assert from 'node:assert/strict';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ControlClient } from '../helpers/control-client.js';
import { startServeProcess, type ServeProcess } from './serve-process.js';

// These drive the real `node bin/ftpsd.js serve` process (built by `npm test`) with real signals.

const started: ServeProcess[] = [];
after(async () => {
  for (const p of started) {
    p.kill();
    await p.exited;
    await rm(p.dir, { recursive: true, force: true });
  }
});

async function serve(opts: Parameters<typeof startServeProcess>[0]): Promise<ServeProcess> {
  const p = await startServeProcess(opts);
  started.push(p);
  return p;
}

async function tryLogin(port: number, user: string, password: string): Promise<number> {
  const c = await ControlClient.connect(port);
  try {
    await c.read();
    return (await c.login(user, password)).code;
  } finally {
    c.close();
  }
}

async function greeting(port: number): Promise<string> {
  const c = await ControlClient.connect(port);
  try {
    return (await c.read())?.text ?? '';
  } finally {
    c.close();
  }
}

const chunk = Buffer.alloc(256 * 1024, 0x61);

describe('SIGHUP', () => {
  test('a user added with `ftpsd user add` logs in at once, SIGHUP reports it, and an open session keeps transferring', async () => {
    const p = await serve({ users: { alice: 'alice-secret' } });
    assert.equal(await tryLogin(p.port, 'bob', 'bob-secret'), 530);

    const alice = await ControlClient.loggedIn(p.port, 'alice', 'alice-secret');
    const port = await alice.epsv();
    assert.equal((await alice.send('STOR during-reload.bin')).code, 150);
    const data = alice.dataConnect(port);
    await data.secured;
    await new Promise<void>((r) => data.socket.write(chunk, () => r()));

    const mark = p.logs().length;
    const add = await p.cli(['user', 'add', 'bob', '--home', p.home('bob')], 'bob-secret\n');
    assert.equal(add.code, 0, add.stderr);
    assert.equal(await tryLogin(p.port, 'bob', 'bob-secret'), 230, 'bob logs in without a reload');
    p.child.kill('SIGHUP');
    const reloaded = await p.waitForLog((l) => l.event === 'users_reloaded', mark);
    assert.ok((reloaded.count as number) >= 2);

    await data.upload(chunk);
    assert.equal((await alice.read())?.code, 226, 'the upload that spanned the reload completes');
    assert.equal((await readFile(join(p.home('alice'), 'during-reload.bin'))).length, chunk.length * 2);
    assert.equal((await alice.send('NOOP')).code, 200, 'the open session survived');
    alice.close();
  });

  test('a changed log.level reaches sessions that were open before the reload', async () => {
    const p = await serve({ users: { alice: 'alice-secret' } });
    const alice = await ControlClient.loggedIn(p.port, 'alice', 'alice-secret');
    assert.equal((await alice.send('NOOP')).code, 200);
    assert.ok(!p.logs().some((l) => l.msg === 'command'), 'at info, commands are not logged');

    const mark = p.logs().length;
    await p.writeConfig({ log: { level: 'debug' } });
    p.child.kill('SIGHUP');
    const reloaded = await p.waitForLog((l) => l.event === 'config_reloaded', mark);
    assert.deepEqual(reloaded.applied, ['log.level']);
    assert.equal((await alice.send('PWD')).code, 257);
    const line = await p.waitForLog((l) => l.msg === 'command' && l.cmd === 'PWD', mark);
    assert.ok(typeof line.sid === 'string', 'logged by the session opened before the reload');
    alice.close();
  });

  test('an invalid configuration keeps what is running', async () => {
    const p = await serve({ users: { alice: 'alice-secret' }, config: { listen: { banner: 'first banner' } } });
    assert.match(await greeting(p.port), /^220 first banner/);

    // A valid change applies; one that needs a restart is reported and not applied.
    let mark = p.logs().length;
    await p.writeConfig({ listen: { banner: 'second banner', port: p.port + 1 } });
    p.child.kill('SIGHUP');
    const applied = await p.waitForLog((l) => l.event === 'config_reloaded', mark);
    assert.deepEqual(applied.applied, ['listen.banner']);
    assert.deepEqual(applied.needsRestart, ['listen.port']);
    // Its own line, right after the summary: written separately, it may arrive a moment later.
    assert.deepEqual((await p.waitForLog((l) => l.event === 'config_needs_restart', mark)).keys, ['listen.port']);
    assert.match(await greeting(p.port), /^220 second banner/);

    // An unknown key makes the file invalid: nothing of it applies, and the reason is logged.
    mark = p.logs().length;
    await p.writeConfig({ listen: { banner: 'third banner' }, limits: { maxSesions: 3 } });
    p.child.kill('SIGHUP');
    const failed = await p.waitForLog((l) => l.event === 'config_reload_failed', mark);
    assert.match(JSON.stringify(failed.problems), /maxSesions/);
    assert.match(await greeting(p.port), /^220 second banner/, 'the running configuration is kept');
    assert.equal(await tryLogin(p.port, 'alice', 'alice-secret'), 230, 'the previous users are kept');
  });
});

describe('SIGTERM', () => {
  test('a running upload finishes within the deadline, idle sessions get 421, then exit 0', async () => {
    const p = await serve({ users: { alice: 'alice-secret' }, config: { shutdown: { graceMs: 15_000 } } });
    const idle = await ControlClient.loggedIn(p.port, 'alice', 'alice-secret');
    const alice = await ControlClient.loggedIn(p.port, 'alice', 'alice-secret');
    const port = await alice.epsv();
    assert.equal((await alice.send('STOR big.bin')).code, 150);
    const data = alice.dataConnect(port);
    await data.secured;
    await new Promise<void>((r) => data.socket.write(chunk, () => r()));

    const mark = p.logs().length;
    p.child.kill('SIGTERM');
    await p.waitForLog((l) => l.event === 'signal' && l.signal === 'SIGTERM', mark);
    const bye = await idle.read();
    assert.equal(bye?.code, 421, 'the idle session is told the server is going away');

    // New sessions are no longer accepted.
    await assert.rejects(ControlClient.connect(p.port));

    for (let i = 0; i < 4; i++) await new Promise<void>((r) => data.socket.write(chunk, () => r()));
    await data.upload(chunk);
    assert.equal((await alice.read())?.code, 226);
    const exit = await p.exited;
    assert.deepEqual(exit, { code: 0, signal: null });

    const content = await readFile(join(p.home('alice'), 'big.bin'));
    assert.equal(content.length, chunk.length * 6, 'the file is complete');
    assert.deepEqual((await readdir(p.home('alice'))).sort(), ['big.bin'], 'no temporary upload file is left');
  });

  test('an upload still running at the deadline is cut: nothing under its name, the bytes kept for a resume', async () => {
    const p = await serve({ users: { alice: 'alice-secret' }, config: { shutdown: { graceMs: 300 } } });
    const alice = await ControlClient.loggedIn(p.port, 'alice', 'alice-secret');
    const port = await alice.epsv();
    assert.equal((await alice.send('STOR slow.bin')).code, 150);
    const data = alice.dataConnect(port);
    await data.secured;
    await new Promise<void>((r) => data.socket.write(chunk, () => r()));
    p.child.kill('SIGTERM');
    const exit = await p.exited;
    assert.deepEqual(exit, { code: 0, signal: null });
    // A half upload is never committed; its bytes stay under a hidden name a later REST + STOR continues from.
    assert.deepEqual(await readdir(p.home('alice')), ['.ftpsd-partial.slow.bin']);
    alice.close();
  });
});
