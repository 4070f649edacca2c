import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HeadObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { stringify } from 'yaml';
import { applyPartnerFile } from '../../src/partners/apply.js';
import { parsePartnerFile } from '../../src/partners/partner-file.js';
import { CURL_UPLOAD_TLS_ARGS, runCurl } from '../helpers/clients.js';
import { FtpError } from '../../src/errors.js';
import { openS3Upload } from '../../src/storage/s3-upload.js';
import { startS3, type TestS3 } from '../helpers/s3.js';
import { hashPassword, startTestServer, type TestServer } from '../helpers/server.js';
import { command, rule, setHooks } from './hooks.js';

// The pre-commit check on a folder in S3 (a real radosgw), with curl: a scanner command that finds its marker refuses
// the upload with its reason in the reply, no object ever appears at the key (nor a multipart upload left behind),
// and the bytes wait in quarantine; a clean file is checked while its key is still absent, then stored with its
// SHA-256. Both for a file smaller than one part (sent by PutObject) and one of two parts (a multipart upload), and
// for APPE, where the check reads the kept object and the new bytes together.

const USER = 'acme';
const PASSWORD = 'acme-secret';
const MiB = 1024 * 1024;
const MARKER = 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE';
const SCANNER = `
import sys, time, os
time.sleep(float(os.environ.get('SCAN_DELAY', '0')))
data = open(sys.argv[1], 'rb').read()
if b'${MARKER}' in data:
    print('virus found: Eicar-Test-Signature')
    sys.exit(1)
print('clean')
`;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('pre-commit check on an S3 folder (Ceph radosgw)', () => {
  let s3: TestS3;
  let t: TestServer;
  let bucket: string;
  let quarantine: string;
  let spoolDir: string;
  const savedTmp = process.env.TMPDIR;
  const key = (name: string) => `partners/${USER}/${name}`;
  const head = (k: string) => s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: k }));
  const isAbsent = (k: string) => head(k).then(() => false, (err: { $metadata?: { httpStatusCode?: number } }) => (err.$metadata?.httpStatusCode === 404 ? true : Promise.reject(err)));
  const object = (k: string) => s3.getObject(bucket, k);
  const multiparts = async () => (await s3.client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
  const curlUpload = (file: string, target: string, extra: string[] = []) => runCurl(['-v', '--ssl-reqd', '-k', ...CURL_UPLOAD_TLS_ARGS, '-u', `${USER}:${PASSWORD}`, ...extra, '-T', file, `ftp://127.0.0.1:${t.port}${target}`], { timeoutMs: 60_000 });

  before(async () => {
    s3 = await startS3();
    bucket = await s3.newBucket();
    t = await startTestServer({
      users: [],
      config: {
        defender: { enabled: false },
        // The smallest part S3 allows, so 6 MiB is a multipart upload of two parts.
        storage: { s3: { locations: [s3.location('rgw')], partBytes: 5 * MiB } },
        events: { quarantineDir: 'quarantine', checkTimeoutMs: 10_000 },
      },
    });
    quarantine = join(t.dir, 'quarantine');
    // The local copies the check reads go under the system's temporary directory: this test's own, to look into.
    spoolDir = join(t.dir, 'tmp');
    await mkdir(spoolDir);
    process.env.TMPDIR = spoolDir;
    const doc = {
      folders: { cloud: { path: `s3://rgw/${bucket}/partners/{user}` } },
      users: { [USER]: { password: await hashPassword(PASSWORD), home: join(t.dir, 'homes', USER), mounts: { '/cloud': 'cloud' }, permissions: { '/': ['list', 'download', 'upload', 'overwrite', 'delete'] } } },
    };
    await applyPartnerFile(t.server.store, parsePartnerFile(stringify(doc), 'test partners'), { actor: 'test', dryRun: false });
    await t.server.reloadUsers();
    const scanner = join(t.dir, 'scan.py');
    await writeFile(scanner, SCANNER);
    await setHooks(t, [command('scan', ['python3', scanner, '{file}'], { env: { SCAN_DELAY: '1' }, timeoutMs: 20_000 })], [rule('av', ['upload_check'], ['scan'], { paths: ['/cloud/**'] })]);
  });
  after(async () => {
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
    await t?.close();
    await s3?.stop();
  });

  /** The quarantined file whose name ends with `-name`, and its note. */
  async function quarantined(name: string): Promise<{ content: Buffer; note: Record<string, unknown> }> {
    const found = (await readdir(quarantine)).find((n) => n.endsWith(`-${name}`));
    assert.ok(found !== undefined, `${name} in quarantine`);
    return { content: await readFile(join(quarantine, found)), note: JSON.parse(await readFile(join(quarantine, `${found}.json`), 'utf8')) as Record<string, unknown> };
  }

  it('a refused upload smaller than one part: the reason in the reply, no object at the key, the file in quarantine', async () => {
    const content = Buffer.from(`header\nX5O!P%@AP[4\\PZX54(P^)7CC)7}$${MARKER}!$H+H*\n`);
    const file = join(t.dir, 'bad.txt');
    await writeFile(file, content);
    const r = await curlUpload(file, '/cloud/bad.txt');
    assert.notEqual(r.code, 0, 'curl reports the upload failed');
    assert.match(r.stderr, /^< 550 Upload refused: virus found: Eicar-Test-Signature\r?$/m);
    assert.ok(await isAbsent(key('bad.txt')), 'HeadObject: no object at the key');
    const q = await quarantined('bad.txt');
    assert.deepEqual(q.content, content);
    assert.equal(q.note.path, '/cloud/bad.txt');
    assert.equal(q.note.sha256, sha256(content));
    assert.deepEqual(await readdir(spoolDir), [], 'no local copy left behind');
  });

  it('a passing check: the key stays absent while the check runs, then the object is stored with its SHA-256', async () => {
    const content = randomBytes(300_000);
    const file = join(t.dir, 'good.bin');
    await writeFile(file, content);
    const upload = curlUpload(file, '/cloud/good.bin');
    // The scanner sleeps a second first: the complete bytes lie in the local copy, the key shows nothing yet.
    const deadline = Date.now() + 15_000;
    while ((await readdir(spoolDir)).length === 0) {
      assert.ok(Date.now() < deadline, 'the local copy for the check appears');
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.ok(await isAbsent(key('good.bin')), 'nothing at the key during the check');
    const r = await upload;
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await object(key('good.bin')), content);
    assert.equal((await head(key('good.bin'))).Metadata?.sha256, sha256(content));
    assert.deepEqual(await readdir(spoolDir), [], 'the local copy is removed after the commit');
  });

  it('a refused multipart upload (6 MiB, the marker in its second part) leaves no object and no multipart upload', async () => {
    const content = Buffer.concat([randomBytes(6 * MiB - 100), Buffer.from(MARKER.padEnd(100, '.'))]);
    const file = join(t.dir, 'big-bad.bin');
    await writeFile(file, content);
    const r = await curlUpload(file, '/cloud/big-bad.bin');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^< 550 Upload refused: virus found: Eicar-Test-Signature\r?$/m);
    assert.ok(await isAbsent(key('big-bad.bin')), 'HeadObject: no object at the key');
    assert.deepEqual(await multiparts(), [], 'the multipart upload was aborted, its parts thrown away');
    const q = await quarantined('big-bad.bin');
    assert.equal(q.content.length, content.length);
    assert.equal(sha256(q.content), sha256(content), 'the quarantined copy is the complete upload');
    assert.deepEqual(await readdir(spoolDir), []);
  });

  it('APPE: the check sees the kept object and the appended bytes as one file; a refusal leaves the object as it was', async () => {
    const first = Buffer.from(`log start\n${MARKER.slice(0, 20)}`);
    const file = join(t.dir, 'log-1.txt');
    await writeFile(file, first);
    let r = await curlUpload(file, '/cloud/log.txt');
    assert.equal(r.code, 0, r.stderr);
    // Neither half holds the marker; the object with the bytes appended does.
    await writeFile(file, `${MARKER.slice(20)}\n`);
    r = await curlUpload(file, '/cloud/log.txt', ['--append']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^< 550 Upload refused: virus found: Eicar-Test-Signature\r?$/m);
    assert.deepEqual(await object(key('log.txt')), first, 'the stored object keeps its content');
    assert.equal((await quarantined('log.txt')).content.toString(), `log start\n${MARKER}\n`);
    await writeFile(file, 'more lines\n');
    r = await curlUpload(file, '/cloud/log.txt', ['--append']);
    assert.equal(r.code, 0, r.stderr);
    const whole = Buffer.concat([first, Buffer.from('more lines\n')]);
    assert.deepEqual(await object(key('log.txt')), whole);
    assert.equal((await head(key('log.txt'))).Metadata?.sha256, sha256(whole));
    assert.deepEqual(await readdir(spoolDir), []);
  });

  it('a clean multipart upload passes the check and is stored whole, in two parts, with its SHA-256', async () => {
    const content = randomBytes(6 * MiB);
    const file = join(t.dir, 'big-good.bin');
    await writeFile(file, content);
    const r = await curlUpload(file, '/cloud/big-good.bin');
    assert.equal(r.code, 0, r.stderr);
    const h = await head(key('big-good.bin'));
    assert.equal(h.ContentLength, content.length);
    assert.match(h.ETag ?? '', /-2"$/, 'a multipart object of two parts');
    assert.equal(h.Metadata?.sha256, sha256(content));
    assert.deepEqual(await object(key('big-good.bin')), content);
    assert.deepEqual(await multiparts(), []);
    assert.deepEqual(await readdir(spoolDir), []);
  });

  // A check rule added while an upload ran: the upload was opened without a local copy (openS3Upload without spool).
  it('a check at commit of an upload opened without a local copy: one part is checked from memory, multipart is refused with 451', async () => {
    const target = (name: string) => ({ client: s3.client, bucket, key: key(name), existing: null });
    const opts = { partBytes: 5 * MiB, partConcurrency: 2 };
    const small = await openS3Upload(target('late-small.txt'), { kind: 'replace' }, opts);
    small.stream.end(Buffer.from(`a late rule\n${MARKER}\n`));
    let seen = '';
    await assert.rejects(
      small.commit({ check: async (staged) => ((seen = await readFile(staged.path, 'utf8')), Promise.reject(new FtpError(550, 'Upload refused: test'))) }),
      (err: FtpError) => err.code === 550,
    );
    assert.equal(seen, `a late rule\n${MARKER}\n`, 'the check read the bytes from a local file');
    assert.ok(await isAbsent(key('late-small.txt')));

    const big = await openS3Upload(target('late-big.bin'), { kind: 'replace' }, opts);
    big.stream.end(randomBytes(6 * MiB));
    let called = false;
    await assert.rejects(
      big.commit({ check: async () => void (called = true) }),
      (err: FtpError) => err.code === 451 && /could not run/.test(err.message),
    );
    assert.equal(called, false);
    assert.ok(await isAbsent(key('late-big.bin')));
    assert.deepEqual(await multiparts(), [], 'its multipart upload was aborted');
    assert.deepEqual(await readdir(spoolDir), []);
  });
});
