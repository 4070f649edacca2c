import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ControlClient, type FtpReply } from '../helpers/control-client.js';
import { startTestServer, writeHomeFile, type TestServer } from '../helpers/server.js';

// Whatever path a client sends, every command stays inside the user's home: `..` stops at the home (as CDUP at "/"
// does), backslashes and NULs are refused (553), and symlinks leading out of the home are refused (550). No byte from
// outside the home may ever reach the client, and nothing outside it may be created or removed.

const USER = 'alice';
const PASSWORD = 'alice-secret';
const SECRET = 'outside-the-home secret\n';

const CORPUS = [
  '../../etc/passwd',
  '/../../etc/passwd',
  '../../../../../../../../etc/passwd',
  '..\\..\\windows\\win.ini',
  '%2e%2e/%2e%2e/etc/passwd',
  'a\0b',
  '../outside/secret.txt',
  'x'.repeat(5000),
  'etclink/passwd',
  'pw',
  'out/secret.txt',
];

interface Outcome {
  codes: number[];
  received: Buffer;
}

/** A command that may open a data connection: EPSV first, and whatever the server answers, read to the end. */
async function withData(c: ControlClient, line: string, upload?: Buffer): Promise<Outcome> {
  const port = await c.epsv();
  const data = c.dataConnect(port);
  const first = await c.send(line);
  if (first.code !== 150) {
    data.socket.destroy();
    return { codes: [first.code], received: Buffer.alloc(0) };
  }
  if (upload !== undefined) await data.upload(upload);
  const final = (await c.read()) as FtpReply;
  return { codes: [first.code, final.code], received: await data.received };
}

describe('paths stay inside the home', () => {
  let t: TestServer;
  let c: ControlClient;
  let outside: string;
  before(async () => {
    t = await startTestServer({ config: { limits: { maxLineBytes: 8192 } } });
    const home = t.home(USER);
    // A directory beside the homes, which no user may reach, and links to it and to /etc from inside the home.
    outside = join(t.dir, 'homes', 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'secret.txt'), SECRET);
    await symlink('/etc', join(home, 'etclink'));
    await symlink('/etc/passwd', join(home, 'pw'));
    await symlink(outside, join(home, 'out'));
    await mkdir(join(home, 'sub'));
    await writeHomeFile(t, USER, 'file.txt', 'inside\n');
    c = await ControlClient.connect(t.port);
    await c.read();
    assert.equal((await c.login(USER, PASSWORD)).code, 230);
  });
  after(async () => {
    c.close();
    await t.close();
  });

  for (const path of CORPUS) {
    const label = JSON.stringify(path.length > 40 ? `${path.slice(0, 12)}… (${path.length} bytes)` : path);

    test(`RETR ${label} is refused and sends nothing`, async () => {
      const { codes, received } = await withData(c, `RETR ${path}`);
      assert.ok(codes[0] === 550 || codes[0] === 553, `got ${codes.join(',')}`);
      assert.equal(received.length, 0);
    });

    test(`LIST ${label} and CWD ${label} are refused`, async () => {
      const list = await withData(c, `LIST ${path}`);
      assert.ok(list.codes[0] === 550 || list.codes[0] === 553, `LIST got ${list.codes.join(',')}`);
      assert.equal(list.received.length, 0);
      const cwd = await c.send(`CWD ${path.replace(/\/[^/]*$/, '') || path}`);
      // A parent made only of `..` is the home itself; anything else must not be entered.
      if (cwd.code === 250) {
        assert.match((await c.send('PWD')).text, /^257 "\/"/);
      } else {
        assert.ok(cwd.code === 550 || cwd.code === 553, `CWD got ${cwd.code}`);
      }
      assert.equal((await c.send('CWD /')).code, 250);
    });

    test(`STOR and DELE ${label} touch nothing outside the home`, async () => {
      const stor = await withData(c, `STOR ${path}`, Buffer.from('written by the client\n'));
      const dele = await c.send(`DELE ${path}`);
      if (path === 'pw') {
        // DELE of a symlink removes the link inside the home, never its target.
        assert.equal(dele.code, 250);
        assert.equal(existsSync('/etc/passwd'), true);
        await symlink('/etc/passwd', join(t.home(USER), 'pw'));
      } else {
        assert.ok(dele.code === 550 || dele.code === 553, `DELE got ${dele.code}`);
      }
      if (stor.codes[0] === 150) {
        // Only `..`-prefixed names can be stored, and they land inside the home.
        assert.deepEqual(stor.codes, [150, 226]);
        assert.match(path, /^\.\.\/outside/);
      } else {
        assert.ok(stor.codes[0] === 550 || stor.codes[0] === 553, `STOR got ${stor.codes.join(',')}`);
      }
      assert.equal(await readFile(join(outside, 'secret.txt'), 'utf8'), SECRET);
      assert.deepEqual(await readdir(outside), ['secret.txt']);
      assert.equal(existsSync('/etc/passwd'), true);
    });
  }

  test('a name too long is refused with 553 "File name too long"', async () => {
    const r = await c.send(`MKD ${'y'.repeat(5000)}`);
    assert.equal(r.code, 553);
    assert.match(r.text, /too long/);
  });

  test('CWD ../../.. stays at the home; LIST there shows the home, not the file system root', async () => {
    assert.equal((await c.send('CWD sub')).code, 250);
    assert.equal((await c.send('CWD ../../..')).code, 250);
    assert.match((await c.send('PWD')).text, /^257 "\/"/);
    const { codes, received } = await withData(c, 'NLST');
    assert.deepEqual(codes, [150, 226]);
    const names = received.toString().split('\r\n').filter((n) => n !== '');
    assert.ok(names.includes('file.txt'), names.join(','));
    assert.ok(!names.includes('usr') && !names.includes('proc'), names.join(','));
  });

  test('an upload with `..` from a subdirectory lands inside the home', async () => {
    assert.equal((await c.send('CWD /sub')).code, 250);
    const r = await withData(c, 'STOR ../../../escaped.txt', Buffer.from('e\n'));
    assert.deepEqual(r.codes, [150, 226]);
    assert.equal(await readFile(join(t.home(USER), 'escaped.txt'), 'utf8'), 'e\n');
    assert.equal(existsSync(join(t.dir, 'escaped.txt')), false);
    assert.equal(existsSync(join(t.dir, 'homes', 'escaped.txt')), false);
    assert.equal((await c.send('CWD /')).code, 250);
  });

  test('MKD, RNFR/RNTO and SIZE through a symlink to outside are refused', async () => {
    assert.equal((await c.send('MKD out/newdir')).code, 550);
    assert.equal((await c.send('SIZE out/secret.txt')).code, 550);
    assert.equal((await c.send('SIZE pw')).code, 550);
    assert.equal((await c.send('RNFR out/secret.txt')).code, 550);
    assert.equal((await c.send('RNFR file.txt')).code, 350);
    assert.equal((await c.send('RNTO out/stolen.txt')).code, 550);
    assert.deepEqual(await readdir(outside), ['secret.txt']);
    assert.equal(existsSync(join(t.home(USER), 'file.txt')), true);
  });
});
