import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CreateMultipartUploadCommand, HeadObjectCommand, ListMultipartUploadsCommand, PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { stringify } from 'yaml';
import { applyPartnerFile } from '../../src/partners/apply.js';
import { parsePartnerFile } from '../../src/partners/partner-file.js';
import { CURL_UPLOAD_TLS_ARGS, PY_REUSE_FTP_TLS, runCurl, runLftp, runPython } from '../helpers/clients.js';
import { ControlClient } from '../helpers/control-client.js';
import { startS3, type TestS3 } from '../helpers/s3.js';
import { hashPassword, startTestServer, type TestServer } from '../helpers/server.js';

// Folders on S3-compatible object storage, against a real radosgw (Ceph), with curl, lftp and Python's ftplib: what a
// partner sees is what a local folder gives, and what lands in the bucket is whole or absent.

const USER = 'acme';
const PASSWORD = 'acme-secret';
const MiB = 1024 * 1024;
const QUOTA_BYTES = 100_000;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Places `USER` with /cloud and /capped on S3 folders (and a local home) through a partners file, as an operator would. */
async function applyPartners(t: TestServer, folders: Record<string, unknown>, mounts: Record<string, string>): Promise<void> {
  const doc = {
    folders,
    users: { [USER]: { password: await hashPassword(PASSWORD), home: join(t.dir, 'homes', USER), mounts, permissions: { '/': ['list', 'download', 'upload', 'overwrite', 'delete', 'rename', 'mkdir'] } } },
  };
  await applyPartnerFile(t.server.store, parsePartnerFile(stringify(doc), 'test partners'), { actor: 'test', dryRun: false });
  await t.server.reloadUsers();
}

describe('a folder on S3 (Ceph radosgw)', () => {
  let s3: TestS3;
  let t: TestServer;
  let bucket: string;
  const key = (path: string) => `partners/${USER}/${path}`;
  const url = (path: string) => `ftp://127.0.0.1:${t.port}${path}`;
  const auth = () => ['--ssl-reqd', '-k', '-u', `${USER}:${PASSWORD}`];
  const object = (k: string) => s3.getObject(bucket, k);
  const head = (k: string) => s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: k }));
  const absent = async (k: string) => {
    await assert.rejects(head(k), (err: { $metadata?: { httpStatusCode?: number } }) => err.$metadata?.httpStatusCode === 404, `${k} must not exist`);
  };
  const multiparts = async () => (await s3.client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];

  before(async () => {
    s3 = await startS3();
    bucket = await s3.newBucket();
    t = await startTestServer({
      users: [],
      config: {
        defender: { enabled: false },
        // Small pages so every listing below spans several ListObjectsV2 requests; the smallest part S3 allows.
        storage: { s3: { locations: [s3.location('rgw')], listPageSize: 3, partBytes: 5 * MiB } },
      },
    });
    await applyPartners(
      t,
      {
        cloud: { path: `s3://rgw/${bucket}/partners/{user}` },
        capped: { path: `s3://rgw/${bucket}/capped`, quota: { bytes: QUOTA_BYTES } },
      },
      { '/cloud': 'cloud', '/capped': 'capped' },
    );
  });
  after(async () => {
    await t?.close();
    await s3?.stop();
  });

  test('curl: STOR puts the object whole with its SHA-256 in metadata; RETR, SIZE, MDTM and HASH answer from the store', async () => {
    const content = randomBytes(200_000);
    const file = join(t.dir, 'up.bin');
    await writeFile(file, content);
    const up = await runCurl([...auth(), ...CURL_UPLOAD_TLS_ARGS, '-T', file, url('/cloud/up.bin')]);
    assert.equal(up.code, 0, up.stderr);
    assert.deepEqual(await object(key('up.bin')), content);
    assert.equal((await head(key('up.bin'))).Metadata?.sha256, sha256(content));

    const down = await runCurl([...auth(), '-o', join(t.dir, 'down.bin'), url('/cloud/up.bin')]);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(await readFile(join(t.dir, 'down.bin')), content);

    const c = await ControlClient.loggedIn(t.port, USER, PASSWORD);
    try {
      assert.equal((await c.send('SIZE /cloud/up.bin')).text, `213 ${content.length}`);
      const mdtm = await c.send('MDTM /cloud/up.bin');
      assert.equal(mdtm.code, 213);
      const lastModified = (await head(key('up.bin'))).LastModified!;
      assert.equal(mdtm.text, '213 ' + lastModified.toISOString().replace(/[-:T]/g, '').slice(0, 14));
      const hash = await c.send('HASH /cloud/up.bin');
      assert.equal(hash.code, 213);
      assert.match(hash.text, new RegExp(`^213 SHA-256 0-${content.length - 1} ${sha256(content)} `));
      assert.equal((await c.send('SIZE /cloud/missing.bin')).code, 550);
    } finally {
      c.close();
    }
    const audit = t.logs().find((l) => l.audit === true && l.event === 'transfer' && l.path === '/cloud/up.bin' && l.direction === 'upload');
    assert.equal(audit?.sha256, sha256(content), 'the audit record carries the SHA-256 of the stored object');
  });

  test('lftp: a multipart upload (three parts) and its download; HASH reads the SHA-256 recorded after completion', async () => {
    const content = randomBytes(12 * MiB + 12_345);
    const file = join(t.dir, 'big.bin');
    await writeFile(file, content);
    const r = await runLftp(`put ${file} -o /cloud/big.bin\nget /cloud/big.bin -o ${join(t.dir, 'big.back')}`, { port: t.port, user: USER, password: PASSWORD, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await readFile(join(t.dir, 'big.back')), content);
    const h = await head(key('big.bin'));
    assert.equal(h.ContentLength, content.length);
    assert.match(h.ETag ?? '', /-3"$/, 'stored as a multipart object of three parts');
    assert.equal(h.Metadata?.sha256, sha256(content));
    assert.deepEqual(await multiparts(), [], 'no multipart upload left behind');
  });

  test('ftplib: REST + RETR reads a range; APPE continues a small object and a large one (UploadPartCopy); REST + STOR continues at an offset', async () => {
    const small = randomBytes(100_000);
    const large = randomBytes(6 * MiB);
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key('small.bin'), Body: small }));
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key('large.bin'), Body: large }));
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key('cut.bin'), Body: large }));
    const code = `${PY_REUSE_FTP_TLS}
import io, sys, hashlib
ftp = ftps_login(${t.port}, '${USER}', '${PASSWORD}')
ftp.cwd('/cloud')
got = bytearray()
ftp.retrbinary('RETR large.bin', got.extend, rest=5000000)
print('tail', len(got), hashlib.sha256(got).hexdigest())
ftp.storbinary('APPE small.bin', io.BytesIO(b'S' * 1000))
ftp.storbinary('APPE large.bin', io.BytesIO(b'L' * 2000))
ftp.storbinary('STOR cut.bin', io.BytesIO(b'C' * 3000), rest=4000000)
print(ftp.sendcmd('HASH large.bin'))
ftp.quit()
`;
    const r = await runPython(code, { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const tail = large.subarray(5_000_000);
    assert.match(r.stdout, new RegExp(`^tail ${tail.length} ${sha256(tail)}$`, 'm'));
    const expected = {
      'small.bin': Buffer.concat([small, Buffer.alloc(1000, 'S')]),
      'large.bin': Buffer.concat([large, Buffer.alloc(2000, 'L')]),
      'cut.bin': Buffer.concat([large.subarray(0, 4_000_000), Buffer.alloc(3000, 'C')]),
    };
    for (const [name, content] of Object.entries(expected)) {
      assert.deepEqual(await object(key(name)), content, name);
      assert.equal((await head(key(name))).Metadata?.sha256, sha256(content), `SHA-256 of ${name}`);
    }
    // The 6 MiB prefix was copied inside the store: the new object has a part for it and one for the new bytes.
    assert.match((await head(key('large.bin'))).ETag ?? '', /-2"$/);
    assert.match(r.stdout, new RegExp(`^213 SHA-256 0-${expected['large.bin'].length - 1} ${sha256(expected['large.bin'])} `, 'm'));
    const c = await ControlClient.loggedIn(t.port, USER, PASSWORD);
    try {
      assert.equal((await c.send('REST 999999999')).code, 350);
      await c.epsv();
      assert.equal((await c.send('RETR /cloud/small.bin')).code, 554, 'REST beyond the end');
    } finally {
      c.close();
    }
  });

  test('LIST, MLSD and NLST page through ListObjectsV2 (page size 3) and show directories made by MKD', async () => {
    const names = Array.from({ length: 8 }, (_, i) => `list/f${i}.txt`);
    for (const n of names) await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key(n), Body: n }));
    const c = await ControlClient.loggedIn(t.port, USER, PASSWORD);
    try {
      assert.equal((await c.send('MKD /cloud/list/sub')).code, 257);
      assert.equal((await c.send('MKD /cloud/list/sub')).code, 550, 'MKD of an existing directory');
      assert.equal((await c.send('MKD /cloud/nowhere/sub')).code, 550, 'MKD below a missing directory');
    } finally {
      c.close();
    }
    assert.equal((await head(key('list/sub/'))).ContentLength, 0, 'the directory is a marker object');
    const expected = [...names.map((n) => n.slice('list/'.length)), 'sub'].sort();

    const nlst = await runCurl([...auth(), '-l', url('/cloud/list/')]);
    assert.equal(nlst.code, 0, nlst.stderr);
    assert.deepEqual(nlst.stdout.split(/\r?\n/).filter((l) => l !== ''), expected);

    const list = await runLftp('cd /cloud/list\ncls -1 --sort=name', { port: t.port, user: USER, password: PASSWORD });
    assert.equal(list.code, 0, list.stderr);
    // lftp shows the directory itself as "." (MLSD's cdir entry).
    assert.deepEqual(list.stdout.split('\n').filter((l) => l !== '' && l !== '.').map((l) => l.replace(/\/$/, '')), expected);

    const mlsd = await runPython(`${PY_REUSE_FTP_TLS}
ftp = ftps_login(${t.port}, '${USER}', '${PASSWORD}')
for name, facts in ftp.mlsd('/cloud/list'):
    if facts['type'] not in ('cdir', 'pdir'):
        print(name, facts['type'], facts.get('size', '-'))
ftp.quit()
`);
    assert.equal(mlsd.code, 0, mlsd.stderr);
    const lines = mlsd.stdout.split('\n').filter((l) => l !== '');
    assert.deepEqual(lines.map((l) => l.split(' ')[0]), expected);
    assert.ok(lines.includes('sub dir -'));
    assert.ok(lines.includes('f3.txt file 11'));
  });

  test('RNFR/RNTO moves a file (copy then delete, SHA-256 kept), refuses a directory with its reason; DELE, RMD', async () => {
    const content = Buffer.from('to be moved\n');
    const c = await ControlClient.loggedIn(t.port, USER, PASSWORD);
    try {
      const port = await c.epsv();
      const d = c.dataConnect(port);
      assert.equal((await c.send('STOR /cloud/move-me.txt')).code, 150);
      await d.upload(content);
      assert.equal((await c.read())?.code, 226);
      assert.equal((await c.send('MKD /cloud/dir')).code, 257);
      assert.equal((await c.send('RNFR /cloud/move-me.txt')).code, 350);
      assert.equal((await c.send('RNTO /cloud/dir/moved.txt')).code, 250);
      await absent(key('move-me.txt'));
      assert.deepEqual(await object(key('dir/moved.txt')), content);
      assert.equal((await head(key('dir/moved.txt'))).Metadata?.sha256, sha256(content));

      assert.equal((await c.send('RNFR /cloud/dir')).code, 350);
      const refused = await c.send('RNTO /cloud/dir2');
      assert.equal(refused.code, 550);
      assert.match(refused.text, /Cannot rename a directory on object storage/);

      assert.equal((await c.send('RMD /cloud/dir')).code, 550, 'a directory holding a file is not removed');
      assert.equal((await c.send('DELE /cloud/dir/moved.txt')).code, 250);
      await absent(key('dir/moved.txt'));
      assert.equal((await c.send('DELE /cloud/dir/moved.txt')).code, 550);
      assert.equal((await c.send('RMD /cloud/dir')).code, 250);
      await absent(key('dir/'));
      assert.equal((await c.send('CWD /cloud/dir')).code, 550);
    } finally {
      c.close();
    }
  });

  test('a client killed mid-upload leaves no object and no multipart upload, even with parts already stored', async () => {
    // Python sends 6 MiB at once (one part reaches the store), then trickles until it is killed: no close_notify.
    const code = `${PY_REUSE_FTP_TLS}
import io, time
class Slow(io.RawIOBase):
    def __init__(self): self.n = 0
    def readable(self): return True
    def read(self, size=-1):
        self.n += 1
        if self.n == 100:
            print('sent', flush=True)
        if self.n > 100:
            time.sleep(0.05)
        return b'k' * 65536
ftp = ftps_login(${t.port}, '${USER}', '${PASSWORD}')
ftp.storbinary('STOR /cloud/killed.bin', Slow(), blocksize=65536)
`;
    const child = spawn('python3', ['-c', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    try {
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      await until('a part of the upload in the store', async () => (out.includes('sent') && (await multiparts()).some((u) => u.Key === key('killed.bin')) ? true : undefined), 20_000);
      await absent(key('killed.bin'));
      child.kill('SIGKILL');
      await exited;
    } finally {
      clearTimeout(killer);
      child.kill('SIGKILL');
    }
    const audit = await until('the aborted upload audit', () => t.logs().find((l) => l.audit === true && l.event === 'transfer' && l.path === '/cloud/killed.bin' && l.result === 'aborted'));
    assert.ok((audit.bytes as number) >= 5 * MiB);
    await absent(key('killed.bin'));
    await until('the multipart upload aborted', async () => ((await multiparts()).some((u) => u.Key === key('killed.bin')) ? undefined : true));
  });

  test('a quota on an S3 folder refuses the upload that would pass it (552), and the object is not stored', async () => {
    const file = join(t.dir, 'q.bin');
    await writeFile(file, randomBytes(60_000));
    const first = await runCurl([...auth(), ...CURL_UPLOAD_TLS_ARGS, '-T', file, url('/capped/one.bin')]);
    assert.equal(first.code, 0, first.stderr);
    const second = await runCurl([...auth(), ...CURL_UPLOAD_TLS_ARGS, '-T', file, url('/capped/two.bin')]);
    assert.notEqual(second.code, 0);
    // curl names the 552 reply, unless the cut data connection failed its send first (it reads the reply only after).
    assert.match(second.stderr, /Exceeded storage allocation|Send failure|Failed sending data/, second.stderr);
    assert.equal((await head('capped/one.bin')).ContentLength, 60_000);
    await absent('capped/two.bin');
    const c = await ControlClient.loggedIn(t.port, USER, PASSWORD);
    try {
      const avbl = await c.send('AVBL /capped');
      assert.equal(avbl.code, 213);
      assert.equal(avbl.text, `213 ${QUOTA_BYTES - 60_000}`, 'what is left of the quota');
    } finally {
      c.close();
    }
  });
});

describe('the S3 multipart sweeper', () => {
  let s3: TestS3;
  let t: TestServer;
  let bucket: string;
  before(async () => {
    s3 = await startS3();
    bucket = await s3.newBucket();
    t = await startTestServer({ users: [], config: { defender: { enabled: false }, storage: { s3: { locations: [s3.location('rgw')], sweepIntervalMs: 300, staleUploadAgeMs: 1_000 } } } });
    await applyPartners(t, { cloud: { path: `s3://rgw/${bucket}/inbox` } }, { '/cloud': 'cloud' });
  });
  after(async () => {
    await t?.close();
    await s3?.stop();
  });

  test('aborts a multipart upload a crashed node left in a folder once it is older than staleUploadAgeMs, and nothing else', async () => {
    // What a node killed mid-upload leaves: a started multipart upload with a stored part, never completed.
    const started = await s3.client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'inbox/crashed.bin' }));
    await s3.client.send(new UploadPartCommand({ Bucket: bucket, Key: 'inbox/crashed.bin', UploadId: started.UploadId, PartNumber: 1, Body: randomBytes(1000) }));
    // Outside every folder: not the sweeper's to touch.
    const foreign = await s3.client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'elsewhere/other.bin' }));
    const swept = await until('the sweep', () => t.logs().find((l) => l.event === 's3_upload_swept' && l.object === 'inbox/crashed.bin'), 15_000);
    assert.equal(swept.root, `s3://rgw/${bucket}/inbox`);
    const left = (await s3.client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
    assert.deepEqual(left.map((u) => u.UploadId), [foreign.UploadId]);
  });
});
