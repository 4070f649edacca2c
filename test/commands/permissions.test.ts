import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, writeHomeFile, type TestServer } from '../helpers/server.js';

// Per-user permissions from the users file. A denied action is 550 (RFC 959: requested action not taken), checked
// before any data connection is used, and leaves the files as they were.

const PASSWORD = 'secret-pw';
const ALL = ['list', 'download', 'upload', 'delete', 'rename', 'mkdir'] as const;
const without = (p: (typeof ALL)[number]) => ALL.filter((x) => x !== p);

async function loginAs(t: TestServer, user: string): Promise<ControlClient> {
  const c = await ControlClient.connect(t.port);
  await c.read();
  assert.equal((await c.login(user, PASSWORD)).code, 230);
  return c;
}

/** The first reply to a data command (the data connection is offered and dropped if unused). */
async function dataCommand(c: ControlClient, line: string, upload?: Buffer): Promise<number[]> {
  const port = await c.epsv();
  const data = c.dataConnect(port);
  const first = await c.send(line);
  if (first.code !== 150) {
    data.socket.destroy();
    return [first.code];
  }
  if (upload !== undefined) await data.upload(upload);
  const final = await c.read();
  await data.received;
  return [first.code, final?.code ?? 0];
}

describe('per-user permissions', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({
      users: [
        { name: 'noupload', password: PASSWORD, permissions: without('upload') },
        { name: 'nodelete', password: PASSWORD, permissions: without('delete') },
        { name: 'nolist', password: PASSWORD, permissions: without('list') },
        { name: 'nodownload', password: PASSWORD, permissions: without('download') },
        { name: 'norename', password: PASSWORD, permissions: without('rename') },
        { name: 'nomkdir', password: PASSWORD, permissions: without('mkdir') },
      ],
    });
    for (const u of ['noupload', 'nodelete', 'nolist', 'nodownload', 'norename', 'nomkdir']) {
      await writeHomeFile(t, u, 'file.txt', 'original\n');
      await mkdir(join(t.home(u), 'dir'));
    }
  });
  after(() => t.close());

  test('without upload: STOR, APPE, STOU and MFMT are 550 and the file is unchanged; download still works', async () => {
    const c = await loginAs(t, 'noupload');
    try {
      assert.deepEqual(await dataCommand(c, 'STOR file.txt'), [550]);
      assert.deepEqual(await dataCommand(c, 'STOR new.txt'), [550]);
      assert.deepEqual(await dataCommand(c, 'APPE file.txt'), [550]);
      assert.deepEqual(await dataCommand(c, 'STOU'), [550]);
      assert.equal((await c.send('MFMT 20200101000000 file.txt')).code, 550);
      assert.equal(await readFile(join(t.home('noupload'), 'file.txt'), 'utf8'), 'original\n');
      assert.equal(existsSync(join(t.home('noupload'), 'new.txt')), false);
      assert.deepEqual(await dataCommand(c, 'RETR file.txt'), [150, 226]);
    } finally {
      c.close();
    }
  });

  test('without delete: DELE and RMD are 550 and nothing is removed; upload still works', async () => {
    const c = await loginAs(t, 'nodelete');
    try {
      const r = await c.send('DELE file.txt');
      assert.equal(r.code, 550);
      assert.match(r.text, /Permission denied/);
      assert.equal((await c.send('RMD dir')).code, 550);
      assert.equal(existsSync(join(t.home('nodelete'), 'file.txt')), true);
      assert.equal(existsSync(join(t.home('nodelete'), 'dir')), true);
      assert.deepEqual(await dataCommand(c, 'STOR up.txt', Buffer.from('u')), [150, 226]);
    } finally {
      c.close();
    }
  });

  test('without list: LIST, NLST, MLSD and MLST are 550; RETR still works', async () => {
    const c = await loginAs(t, 'nolist');
    try {
      assert.deepEqual(await dataCommand(c, 'LIST'), [550]);
      assert.deepEqual(await dataCommand(c, 'NLST'), [550]);
      assert.deepEqual(await dataCommand(c, 'MLSD'), [550]);
      assert.equal((await c.send('MLST file.txt')).code, 550);
      assert.deepEqual(await dataCommand(c, 'RETR file.txt'), [150, 226]);
    } finally {
      c.close();
    }
  });

  test('without download: RETR and HASH are 550', async () => {
    const c = await loginAs(t, 'nodownload');
    try {
      assert.deepEqual(await dataCommand(c, 'RETR file.txt'), [550]);
      assert.equal((await c.send('HASH file.txt')).code, 550);
    } finally {
      c.close();
    }
  });

  test('without rename: RNFR is 550; without mkdir: MKD is 550', async () => {
    const a = await loginAs(t, 'norename');
    const b = await loginAs(t, 'nomkdir');
    try {
      assert.equal((await a.send('RNFR file.txt')).code, 550);
      assert.equal((await a.send('RNTO other.txt')).code, 503);
      assert.equal((await b.send('MKD made')).code, 550);
      assert.equal(existsSync(join(t.home('nomkdir'), 'made')), false);
      assert.equal(existsSync(join(t.home('norename'), 'file.txt')), true);
    } finally {
      a.close();
      b.close();
    }
  });
});
