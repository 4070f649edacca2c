import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ConnectionOptions } from 'node:tls';
import { Client, FileType } from 'basic-ftp';
import { startTestServer, type TestServer } from '../helpers/server.js';

// basic-ftp, a Node client whose data connections resume the control session (and pick up TLS 1.3 tickets). Files
// go up and down unchanged, and its LIST parser reads our listing format: names (spaces, UTF-8), sizes and types.

const USER = 'alice';
const PASSWORD = 'alice-secret';
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
const SIZES = { empty: 0, one: 1, mib: 1024 * 1024 } as const;

async function connect(t: TestServer, version: (typeof VERSIONS)[number]): Promise<Client> {
  const client = new Client(10_000);
  const secureOptions: ConnectionOptions = { rejectUnauthorized: false, minVersion: version, maxVersion: version };
  await client.access({ host: '127.0.0.1', port: t.port, user: USER, password: PASSWORD, secure: true, secureOptions });
  return client;
}

describe('basic-ftp', () => {
  let t: TestServer;
  let local: string;
  before(async () => {
    t = await startTestServer();
    local = await mkdtemp(join(tmpdir(), 'ftpsd-basic-ftp-'));
  });
  after(async () => {
    await t.close();
    await rm(local, { recursive: true, force: true });
  });

  for (const version of VERSIONS) {
    test(`${version}: uploadFrom and downloadTo keep the SHA-256; every data connection resumed`, async () => {
      const client = await connect(t, version);
      try {
        for (const [name, size] of Object.entries(SIZES)) {
          const body = randomBytes(size);
          const src = join(local, `${version}-${name}`);
          await writeFile(src, body);
          const remote = `${version}-${name}.bin`;
          assert.equal((await client.uploadFrom(src, remote)).code, 226);
          const dst = `${src}.down`;
          assert.equal((await client.downloadTo(dst, remote)).code, 226);
          assert.equal(sha256(await readFile(dst)), sha256(body));
          assert.equal(sha256(await readFile(join(t.home(USER), remote))), sha256(body));
          const up = t.logs().filter((l) => l.audit === true && l.event === 'transfer' && l.path === `/${remote}` && l.direction === 'upload').at(-1);
          assert.equal(up?.sha256, sha256(body));
          assert.equal(up?.bytes, size);
          assert.equal(up?.tlsVersion, version);
          assert.equal(up?.resumed, true);
          assert.equal(up?.result, 'ok');
        }
      } finally {
        client.close();
      }
    });
  }

  test('list() parses names, sizes and types from LIST', async () => {
    const client = await connect(t, 'TLSv1.3');
    try {
      await client.ensureDir('listing dir');
      await client.cd('/');
      const files: Record<string, Buffer> = {
        'plain.txt': Buffer.from('12345'),
        'with space.bin': randomBytes(4096),
        'grüße 日本.txt': randomBytes(777),
      };
      for (const [name, body] of Object.entries(files)) {
        const src = join(local, 'list-src');
        await writeFile(src, body);
        await client.uploadFrom(src, `listing dir/${name}`);
      }
      await client.ensureDir('listing dir/sub dir');
      await client.cd('/');
      // basic-ftp prefers MLSD when FEAT lists MLST; both its MLSD and its Unix LIST parser must read our output.
      assert.deepEqual(client.availableListCommands, ['MLSD', 'LIST -a', 'LIST']);
      for (const command of ['MLSD', 'LIST']) {
        client.availableListCommands = [command];
        const list = await client.list('listing dir');
        const byName = new Map(list.map((e) => [e.name, e]));
        assert.deepEqual([...byName.keys()].sort(), [...Object.keys(files), 'sub dir'].sort(), command);
        for (const [name, body] of Object.entries(files)) {
          assert.equal(byName.get(name)?.size, body.length, `${command}: ${name}`);
          assert.equal(byName.get(name)?.type, FileType.File, `${command}: ${name}`);
        }
        assert.equal(byName.get('sub dir')?.type, FileType.Directory, command);
        assert.ok(byName.get('plain.txt')?.modifiedAt ?? byName.get('plain.txt')?.rawModifiedAt, `${command}: a modification time`);
      }
      assert.equal(await client.size('listing dir/grüße 日本.txt'), 777);
    } finally {
      client.close();
    }
  });
});
