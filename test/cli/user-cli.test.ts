import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { runProcess, type RunResult } from '../helpers/clients.js';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// `ftpsd user add|passwd|list|del|show|disable|enable` through the built binary, against the store of a running
// server: each change applies at the next login, without a reload.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'ftpsd.js');

describe('ftpsd user', () => {
  let srv: TestServer;
  let configFile: string;
  let storeFile: string;
  const clients: ControlClient[] = [];

  before(async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'dist/ is missing: build with npx tsc -p tsconfig.json');
    srv = await startTestServer({ users: [{ name: 'alice', password: 'alice-cli-pw' }], config: { defender: { enabled: false } } });
    storeFile = join(srv.storeDir, 'ftpsd.db');
    configFile = join(srv.dir, 'ftpsd.yaml');
    await writeFile(configFile, stringify({ users: { file: join(srv.dir, 'users.yaml') }, store: { path: storeFile } }));
  });

  after(async () => {
    for (const c of clients) c.close();
    await srv?.close();
  });

  const cli = (args: string[], input?: string): Promise<RunResult> =>
    runProcess(process.execPath, [BIN, 'user', ...args, '--config', configFile], { cwd: srv.dir, env: { FTPSD_CONFIG: '' }, input, timeoutMs: 15_000 });

  async function login(user: string, password: string): Promise<number> {
    const c = await ControlClient.connect(srv.port);
    clients.push(c);
    assert.equal((await c.read())?.code, 220);
    const r = await c.login(user, password);
    c.close();
    return r.code;
  }

  it('add, login, passwd, list, del: each step is what the server sees at the next login', async () => {
    const home = join(srv.dir, 'homes', 'bob');
    const add = await cli(['add', 'bob', '--home', home], 'bob-first-pw\n');
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /user bob added/);
    const stored = await readFile(storeFile);
    assert.ok(stored.includes('$argon2id$') || (await readFile(`${storeFile}-wal`).catch(() => Buffer.alloc(0))).includes('$argon2id$'), 'an argon2id hash is stored');
    assert.ok(!stored.includes('bob-first-pw'), 'only the hash is stored');
    assert.equal(await login('bob', 'bob-first-pw'), 230, 'known at once');
    await srv.server.reloadUsers(); // the store watch may have seen the change first
    assert.equal(srv.server.users.size, 2, 'the server counts bob');
    assert.equal(await login('alice', 'alice-cli-pw'), 230, 'other users are kept');

    const passwd = await cli(['passwd', 'bob'], 'bob-second-pw\n');
    assert.equal(passwd.code, 0, passwd.stderr);
    assert.equal(await login('bob', 'bob-first-pw'), 530, 'old password refused');
    assert.equal(await login('bob', 'bob-second-pw'), 230, 'new password accepted');

    const list = await cli(['list']);
    assert.equal(list.code, 0, list.stderr);
    const rows = list.stdout.trim().split('\n');
    assert.deepEqual(rows.map((r) => r.split('\t')[0]), ['alice', 'bob']);
    const bob = rows.find((r) => r.startsWith('bob\t'))!;
    assert.ok(bob.includes(`home=${home}`), bob);
    assert.match(bob, /permissions=list,download,upload,overwrite,delete,rename,mkdir/);
    assert.ok(!list.stdout.includes('$argon2'), 'list shows no hashes');

    const del = await cli(['del', 'bob']);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(await login('bob', 'bob-second-pw'), 530);
    await srv.server.reloadUsers();
    assert.ok(srv.server.users.size >= 1);
    assert.equal(await login('alice', 'alice-cli-pw'), 230);
  });

  it('add --perms limits what the user may do', async () => {
    const add = await cli(['add', 'carol', '--home', join(srv.dir, 'homes', 'carol'), '--perms', 'list,download'], 'carol-pw\n');
    assert.equal(add.code, 0, add.stderr);
    const c = await ControlClient.connect(srv.port);
    clients.push(c);
    await c.read();
    assert.equal((await c.login('carol', 'carol-pw')).code, 230);
    assert.equal((await c.send('MKD newdir')).code, 550);
    assert.equal((await c.send('PWD')).code, 257);
  });

  it('add --download-rate stores a per-user limit that list shows', async () => {
    const add = await cli(['add', 'hugo', '--home', join(srv.dir, 'homes', 'hugo'), '--download-rate', '1048576', '--upload-rate', '0'], 'hugo-pw\n');
    assert.equal(add.code, 0, add.stderr);
    const list = await cli(['list']);
    const row = list.stdout.split('\n').find((r) => r.startsWith('hugo\t'));
    assert.match(row ?? '', /\tupload-rate=0\tdownload-rate=1048576/);
    assert.equal(await login('hugo', 'hugo-pw'), 230);
  });

  it('show tells each effective value and its source; disable closes an open session at once, enable lets it back', async () => {
    assert.equal(await login('alice', 'alice-cli-pw'), 230);
    const show = await cli(['show', 'alice']);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /^user alice$/m);
    assert.match(show.stdout, /status\s+enabled/);
    assert.match(show.stdout, /last login\s+\d{4}-/, 'earlier logins are recorded');
    assert.match(show.stdout, /\/ -> home at .*homes\/alice \(user\)/);
    assert.match(show.stdout, /\/\s+list,download,upload,overwrite,delete,rename,mkdir \(user\)/);
    assert.match(show.stdout, /maxSessions\s+20 \(limits\.maxLoginsPerUser\) \(default\)/);

    const open = await ControlClient.loggedIn(srv.port, 'alice', 'alice-cli-pw');
    clients.push(open);
    const disable = await cli(['disable', 'alice']);
    assert.equal(disable.code, 0, disable.stderr);
    const goodbye = await open.read();
    assert.equal(goodbye?.code, 421, 'the open session is closed');
    assert.match(goodbye.text, /disabled/);
    assert.equal(await login('alice', 'alice-cli-pw'), 530, 'no new login');
    assert.match((await cli(['show', 'alice'])).stdout, /status\s+disabled/);
    assert.ok(srv.logs().some((l) => l.event === 'store_change' && l.action === 'disable' && l.name === 'alice'), 'the change is in the audit trail');
    assert.equal((await cli(['enable', 'alice'])).code, 0);
    assert.equal(await login('alice', 'alice-cli-pw'), 230);
  });

  it('refuses mistakes with a non-zero exit and a clear message, leaving the store alone', async () => {
    const before = (await cli(['list'])).stdout;
    const home = join(srv.dir, 'homes', 'x');
    const [dup, unknownPasswd, unknownDel, badPerms, badName, noPassword, noHome, badRate] = await Promise.all([
      cli(['add', 'alice', '--home', home], 'pw\n'),
      cli(['passwd', 'ghost'], 'pw\n'),
      cli(['del', 'ghost']),
      cli(['add', 'dave', '--home', home, '--perms', 'list,fly'], 'pw\n'),
      cli(['add', 'bad name!', '--home', home], 'pw\n'),
      cli(['add', 'erin', '--home', home], ''),
      cli(['add', 'frank'], 'pw\n'),
      cli(['add', 'gina', '--home', home, '--upload-rate', '1MB'], 'pw\n'),
    ]);
    const check = (r: RunResult, pattern: RegExp, what: string) => {
      assert.notEqual(r.code, 0, `${what} exits non-zero`);
      assert.match(r.stderr, pattern, `${what}: ${r.stderr}`);
    };
    check(dup, /user "alice" already exists/, 'duplicate user');
    check(unknownPasswd, /no user "ghost"/, 'passwd of an unknown user');
    check(unknownDel, /no user "ghost"/, 'del of an unknown user');
    check(badPerms, /unknown permission "fly"/, 'bad permission');
    check(badName, /invalid user name/, 'bad user name');
    check(noPassword, /no password/, 'empty standard input');
    check(noHome, /--home/, 'missing --home');
    check(badRate, /--upload-rate takes a whole number of bytes per second/, 'a rate that is not a number');
    assert.equal((await cli(['list'])).stdout, before, 'users unchanged');
  });
});
