import assert from 'node:assert/strict';
import { mkdir, statfs, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, writeHomeFile, type TestServer } from '../helpers/server.js';

// AVBL (draft-peterson-streamlined-ftp-command-extensions, as FileZilla Server and SFTPGo answer it): the bytes a
// client may still store in a directory, so a partner's tool can check before it sends a large file.

const PASSWORD = 'avbl-secret';
/** Other processes write to the same disk while the test runs; the figures must agree to within this. */
const SLACK_BYTES = 256 * 1024 * 1024;

describe('AVBL', () => {
  let t: TestServer;
  const clients: ControlClient[] = [];
  const login = async (user: string): Promise<ControlClient> => {
    const c = await ControlClient.loggedIn(t.port, user, PASSWORD);
    clients.push(c);
    return c;
  };

  before(async () => {
    t = await startTestServer({
      users: [
        { name: 'alice', password: PASSWORD },
        { name: 'blind', password: PASSWORD, permissions: ['download', 'upload'] },
      ],
    });
    await mkdir(join(t.home('alice'), 'inbox'));
    await writeHomeFile(t, 'alice', 'file.txt', 'x');
    await symlink('/', join(t.home('alice'), 'escape'));
  });
  after(async () => {
    for (const c of clients) c.close();
    await t?.close();
  });

  it('answers 213 and the free bytes of the file system for the current directory and for a named one', async () => {
    const c = await login('alice');
    const fs = await statfs(t.home('alice'));
    const expected = fs.bavail * fs.bsize;
    for (const line of ['AVBL', 'AVBL inbox', 'AVBL /inbox/']) {
      const r = await c.send(line);
      assert.equal(r.code, 213, line);
      assert.match(r.text, /^213 \d+$/, line);
      const bytes = Number(r.text.slice(4));
      assert.ok(Math.abs(bytes - expected) < SLACK_BYTES, `${line}: ${bytes} vs statfs ${expected}`);
    }
    assert.equal((await c.send('CWD inbox')).code, 250);
    assert.equal((await c.send('AVBL')).code, 213);
    const feat = await c.send('FEAT');
    assert.match(feat.text, /^ AVBL$/m);
  });

  it('is 550 for a missing path, a file, and a symlink leading out of the home; 530 before login', async () => {
    const c = await login('alice');
    assert.equal((await c.send('AVBL nowhere')).code, 550);
    assert.equal((await c.send('AVBL file.txt')).code, 550);
    const escape = await c.send('AVBL escape');
    assert.equal(escape.code, 550);
    assert.match(escape.text, /outside home/);
    // ".." cannot climb above the home: it names the home itself.
    assert.equal((await c.send('AVBL ../../..')).code, 213);
    const anon = await ControlClient.connect(t.port);
    clients.push(anon);
    await anon.read();
    assert.equal((await anon.send('AVBL')).code, 530);
  });

  it('needs the list permission', async () => {
    const c = await login('blind');
    assert.equal((await c.send('AVBL')).code, 550);
  });
});
