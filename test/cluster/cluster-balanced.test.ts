import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HeadObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { ControlClient } from '../helpers/control-client.js';
import { CLIENT_IP, s3ClusterStorage, startCluster, type ClusterTopology } from '../helpers/cluster.js';
import { CURL_UPLOAD_TLS_ARGS, PY_REUSE_FTP_TLS, runCurl, runLftp, runPython, type RunResult } from '../helpers/clients.js';
import { startS3, type TestS3 } from '../helpers/s3.js';

// Three nodes behind HAProxy, which also forwards each node's own passive range to it with send-proxy-v2
// (proxyProtocol.passive): clients see one address for everything, EPSV works, and each node checks the data
// connection against the client named in the balancer's header. The partners' files live in one bucket of a real
// S3 server (Ceph radosgw) every node writes to. Then a node fails: it is killed mid-upload (its multipart upload is
// never completed, and the sweeper of another node aborts it). Every node restarted in turn while clients keep
// uploading (cluster-rolling.test.ts, a topology of its own to keep each file short). cluster-direct.test.ts runs
// the same topology on a shared local folder.

const PARTNERS = `
users:
  acme:
    home: '{root}/acme'
    permissions: { /: [list, download, upload, overwrite, delete, rename, mkdir] }
  capped:
    home: '{root}/capped'
    permissions: { /: [list] }
    policy: { maxSessions: 1 }
`;
const PASSWORDS = { acme: 'acme-Secret-1', capped: 'capped-Secret-1' };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;
const PREFIX = 'partners';
/** Multipart uploads older than this are the sweeper's: longer than any upload below runs before its node dies. */
const STALE_UPLOAD_AGE_MS = 5_000;

describe('three nodes, passive ranges forwarded by the balancer, files on S3 (Ceph radosgw)', () => {
  let s3: TestS3;
  let bucket: string;
  let c: ClusterTopology;
  before(async () => {
    s3 = await startS3();
    bucket = await s3.newBucket();
    c = await startCluster({
      layout: 'balanced',
      partners: PARTNERS,
      passwords: PASSWORDS,
      // The smallest part S3 allows, so one upload below spans several; the sweeper looks every half second.
      storage: s3ClusterStorage(s3.location('rgw'), bucket, PREFIX, { partBytes: 5 * MiB, sweepIntervalMs: 500, staleUploadAgeMs: STALE_UPLOAD_AGE_MS }),
    });
  }, { timeout: 240_000 });
  after(async () => {
    await c?.close();
    await s3?.stop();
  });

  const key = (name: string) => `${PREFIX}/acme/${name}`;
  const object = (name: string): Promise<Buffer> => s3.getObject(bucket, key(name));
  const exists = (name: string) =>
    s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key(name) })).then(
      () => true,
      (err: { $metadata?: { httpStatusCode?: number } }) => {
        if (err.$metadata?.httpStatusCode === 404) return false;
        throw err;
      },
    );
  const multiparts = async (name: string) =>
    ((await s3.client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key(name) }))).Uploads ?? []).filter((u) => u.Key === key(name));

  const curl = (args: string[], timeoutMs?: number): Promise<RunResult> =>
    runCurl(['--ssl-reqd', '-k', '--interface', CLIENT_IP, '-u', `acme:${PASSWORDS.acme}`, ...args], timeoutMs === undefined ? {} : { timeoutMs });
  const base = () => `ftp://127.0.0.1:${c.port}`;

  test('curl, lftp and ftplib transfer through any node, with EPSV, over the forwarded ranges', async () => {
    const body = randomBytes(300_000);
    const local = join(c.dir, 'up.bin');
    await writeFile(local, body);
    for (let i = 0; i < 2; i++) {
      const up = await curl([...CURL_UPLOAD_TLS_ARGS, '-T', local, `${base()}/curl-${i}.bin`]);
      assert.equal(up.code, 0, up.stderr);
      const down = await curl([`${base()}/curl-${i}.bin`, '-o', join(c.dir, `down-${i}.bin`)]);
      assert.equal(down.code, 0, down.stderr);
      assert.equal(sha(await readFile(join(c.dir, `down-${i}.bin`))), sha(body));
    }
    for (let i = 0; i < 2; i++) {
      const lftp = await runLftp(
        [`put ${local} -o lftp-${i}.bin`, `get lftp-${i}.bin -o ${join(c.dir, `lftp-back-${i}.bin`)}`, 'cls -1'].join('\n'),
        { port: c.port, user: 'acme', password: PASSWORDS.acme, settings: [`set net:socket-bind-ipv4 ${CLIENT_IP}`, 'set ftp:prefer-epsv true'] },
      );
      assert.equal(lftp.code, 0, lftp.stderr);
      assert.match(lftp.stdout, new RegExp(`lftp-${i}\\.bin`));
      assert.equal(sha(await readFile(join(c.dir, `lftp-back-${i}.bin`))), sha(body));
    }
    const py = await runPython(
      PY_REUSE_FTP_TLS +
        String.raw`
import io, hashlib
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
data = open('${local}', 'rb').read()
for i in range(2):
    ftp = ReusedSessionFTP_TLS(context=ctx, timeout=10, source_address=('${CLIENT_IP}', 0))
    ftp.connect('127.0.0.1', ${c.port}); ftp.auth(); ftp.login('acme', '${PASSWORDS.acme}'); ftp.prot_p()
    ftp.storbinary('STOR py-%d.bin' % i, io.BytesIO(data))
    got = io.BytesIO(); ftp.retrbinary('RETR py-%d.bin' % i, got.write)
    assert hashlib.sha256(got.getvalue()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert 'py-%d.bin' % i in ftp.nlst()
    ftp.quit()
print('ok')
`,
    );
    assert.equal(py.code, 0, py.stderr);
    const perNode = c.loginsPerNode('acme');
    assert.ok(Object.values(perNode).every((n) => n >= 2), `logins on every node: ${JSON.stringify(perNode)}`);
    // Whichever node took each upload, the objects are in the bucket, whole.
    for (const name of ['curl-0.bin', 'curl-1.bin', 'lftp-1.bin', 'py-0.bin', 'py-1.bin']) assert.equal(sha(await object(name)), sha(body), `${name} in the bucket`);
    for (const n of c.nodes) {
      // The data connections came from the balancer; the header named the client, whose address the check compared.
      assert.ok(n.logs().some((l) => l.audit === true && l.event === 'transfer' && l.ip === CLIENT_IP), `${n.id} transferred for the client`);
      assert.equal(n.logs().some((l) => l.event === 'data_connection_refused'), false, `${n.id} refused no data connection`);
    }
  });

  test('a node killed mid-upload loses only its own session; no object appears, its multipart upload is swept; a session cap held there is freed', async () => {
    const victim = c.nodes[1]!;
    const survivor = c.nodes[2]!;
    const big = join(c.dir, 'big.bin');
    await writeFile(big, randomBytes(12 * MiB));
    const small = randomBytes(200_000);
    await writeFile(join(c.dir, 'small.bin'), small);
    // Straight to each node's control port (the client is not a balancer, so its own address counts).
    const at = (ip: string) => `ftp://${ip}:${c.nodePort}`;
    // A slow upload on the victim (three parts of 5 MiB; the first goes out after 5 MiB), a capped user's session
    // there, and an upload on the survivor.
    const doomed = curl([...CURL_UPLOAD_TLS_ARGS, '--limit-rate', '2M', '-T', big, `${at(victim.ip)}/doomed.bin`], 30_000);
    const capped = await ControlClient.connect(c.nodePort, victim.ip, CLIENT_IP);
    assert.equal((await capped.read())?.code, 220);
    assert.equal((await capped.login('capped', PASSWORDS.capped)).code, 230);
    // The victim has started the multipart upload in the bucket.
    const deadline = Date.now() + 15_000;
    let started = await multiparts('doomed.bin');
    while (started.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      started = await multiparts('doomed.bin');
    }
    assert.equal(started.length, 1, 'the upload on the victim became a multipart upload');
    const survivorUpload = curl([...CURL_UPLOAD_TLS_ARGS, '--limit-rate', '400K', '-T', join(c.dir, 'small.bin'), `${at(survivor.ip)}/survivor.bin`]);
    await new Promise((r) => setTimeout(r, 100));
    await victim.kill();
    const [lost, kept] = await Promise.all([doomed, survivorUpload]);
    assert.notEqual(lost.code, 0, 'the upload on the killed node failed');
    assert.equal(kept.code, 0, `the upload on another node completed: ${kept.stderr}`);
    assert.equal(sha(await object('survivor.bin')), sha(small));
    // Never completed: no object under the name, neither whole nor the parts sent so far; the upload is left over,
    // listed as abortable, until a surviving node's sweeper aborts it once it is older than staleUploadAgeMs.
    assert.equal(await exists('doomed.bin'), false, 'no object under the target name');
    const left = await multiparts('doomed.bin');
    assert.deepEqual(left.map((u) => u.UploadId), started.map((u) => u.UploadId), 'the killed upload is left over, abortable');
    const swept = await Promise.race(
      c.nodes.filter((n) => n !== victim).map((n) => n.waitForLog((l) => l.event === 's3_upload_swept' && l.object === key('doomed.bin'), STALE_UPLOAD_AGE_MS + 10_000)),
    );
    assert.ok(swept, 'a surviving node swept it');
    assert.deepEqual(await multiparts('doomed.bin'), [], 'no multipart upload left');
    assert.equal(await exists('doomed.bin'), false, 'still no object');
    // The killed node's session of the capped user stops counting after cluster.sessionExpiryMs (3 s here); by now
    // (the sweep came seconds after the kill) a new one is let in, on any node.
    const capDeadline = Date.now() + 8_000;
    const again = await ControlClient.connect(c.nodePort, survivor.ip, CLIENT_IP);
    assert.equal((await again.read())?.code, 220);
    let reply = await again.login('capped', PASSWORDS.capped);
    while (reply.code !== 230 && Date.now() < capDeadline) {
      await new Promise((r) => setTimeout(r, 500));
      await again.send('USER capped');
      reply = await again.send(`PASS ${PASSWORDS.capped}`);
    }
    again.close();
    assert.equal(reply.code, 230, 'a new session of the capped user once the dead node\'s session expired');
    capped.close();
    await victim.start();
  });
});
