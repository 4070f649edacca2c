import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { stringify } from 'yaml';
import { applyPartnerFile } from '../../src/partners/apply.js';
import { parsePartnerFile } from '../../src/partners/partner-file.js';
import { PY_REUSE_FTP_TLS, runPython } from '../helpers/clients.js';
import { startS3, type TestS3 } from '../helpers/s3.js';
import { hashPassword, startTestServer, type TestServer } from '../helpers/server.js';

// What each command of a small file costs in requests to the store, read from the server's own metrics
// (ftpsd_s3_requests_total{op}) between the commands of one ftplib session against a real radosgw. Every request is
// signed, sent and parsed by ftpsd and served by the store on the same machine: these figures are the cost per file,
// and a change that adds a request to STOR, RETR or LIST fails here.

const USER = 'acme';
const PASSWORD = 'acme-secret';

/** ftplib session: each step's S3 requests by operation, scraped from /metrics before and after it. */
const STEPS_SCRIPT = String.raw`
import io, json, sys, urllib.request

port, metrics_port, user, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]

def counts():
    text = urllib.request.urlopen('http://127.0.0.1:%d/metrics' % metrics_port).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith('ftpsd_s3_requests_total{'):
            op = line.split('op="', 1)[1].split('"', 1)[0]
            out[op] = float(line.rsplit(' ', 1)[1])
    return out

ftp = ftps_login(port, user, password)
steps = {}
def step(name, action):
    before = counts()
    try:
        reply = action()
    except ftplib.all_errors as e:
        reply = str(e)
    now = counts()
    delta = {op: int(n - before.get(op, 0)) for op, n in now.items() if n != before.get(op, 0)}
    steps[name] = {'reply': str(reply)[:3], 'requests': delta}

body = b'x' * 4096
step('first STOR', lambda: ftp.storbinary('STOR /cloud/first.bin', io.BytesIO(body)))
step('STOR new', lambda: ftp.storbinary('STOR /cloud/a.bin', io.BytesIO(body)))
step('STOR over', lambda: ftp.storbinary('STOR /cloud/a.bin', io.BytesIO(body)))
step('MKD', lambda: ftp.sendcmd('MKD /cloud/d'))
step('STOR in new dir', lambda: ftp.storbinary('STOR /cloud/d/b.bin', io.BytesIO(body)))
step('STOR in dir again', lambda: ftp.storbinary('STOR /cloud/d/c.bin', io.BytesIO(body)))
step('STOR in missing dir', lambda: ftp.storbinary('STOR /cloud/nowhere/x.bin', io.BytesIO(body)))
step('RETR', lambda: ftp.retrbinary('RETR /cloud/a.bin', lambda b: None))
step('LIST root', lambda: ftp.retrlines('LIST /cloud', lambda l: None))
step('LIST dir', lambda: ftp.retrlines('LIST /cloud/d', lambda l: None))
step('HASH', lambda: ftp.sendcmd('HASH /cloud/d/b.bin'))
step('DELE', lambda: ftp.delete('/cloud/d/c.bin'))
step('STOR multipart', lambda: ftp.storbinary('STOR /cloud/big.bin', io.BytesIO(b'y' * (6 * 1024 * 1024))))
ftp.quit()
print(json.dumps(steps))
`;

/** Two sessions, as on two nodes: the second removes a directory the first has just uploaded into. */
const REMOVED_DIR_SCRIPT = String.raw`
import io, sys
port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
dir = sys.argv[4]
one = ftps_login(port, user, password)
two = ftps_login(port, user, password)
one.sendcmd('MKD /cloud/' + dir)
one.storbinary('STOR /cloud/%s/a.bin' % dir, io.BytesIO(b'a'))
two.delete('/cloud/%s/a.bin' % dir)
two.rmd('/cloud/' + dir)
print(sorted(two.nlst('/cloud')))
try:
    print(one.storbinary('STOR /cloud/%s/b.bin' % dir, io.BytesIO(b'b')))
except ftplib.error_perm as e:
    print(e)
print(sorted(two.nlst('/cloud')))
one.quit()
two.quit()
`;

interface Step {
  reply: string;
  requests: Record<string, number>;
}

describe('S3 requests per command (ftpsd_s3_requests_total)', () => {
  let s3: TestS3;
  let t: TestServer;
  let bucket: string;

  before(async () => {
    s3 = await startS3();
    bucket = await s3.newBucket();
    t = await startTestServer({
      users: [],
      config: { defender: { enabled: false }, metrics: { enabled: true, host: '127.0.0.1', port: 0 }, storage: { s3: { locations: [s3.location('rgw')], partBytes: 5 * 1024 * 1024 } } },
    });
    const doc = {
      folders: { cloud: { path: `s3://rgw/${bucket}/partners/{user}`, quota: { bytes: 10_000_000 } } },
      users: {
        [USER]: {
          password: await hashPassword(PASSWORD),
          home: join(t.dir, 'homes', USER),
          mounts: { '/cloud': 'cloud' },
          permissions: { '/': ['list', 'download', 'upload', 'overwrite', 'delete', 'rename', 'mkdir'] },
        },
      },
    };
    await applyPartnerFile(t.server.store, parsePartnerFile(stringify(doc), 'test partners'), { actor: 'test', dryRun: false });
    await t.server.reloadUsers();
  });
  after(async () => {
    await t?.close();
    await s3?.stop();
  });

  test('ftplib: STOR, RETR and LIST of a 4 KiB file cost the requests counted here, and no more', async () => {
    const run = await runPython(`${PY_REUSE_FTP_TLS}\nimport sys\nsys.argv = ['x', '${t.port}', '${t.server.metricsPort}', '${USER}', '${PASSWORD}']\n${STEPS_SCRIPT}`, { timeoutMs: 60_000 });
    assert.equal(run.code, 0, run.stderr);
    const steps = JSON.parse(run.stdout) as Record<string, Step>;
    const seen = (name: string) => ({ reply: steps[name]?.reply, requests: steps[name]?.requests });
    // The first upload into a folder with a quota counts what the folder holds (one listing), once.
    assert.deepEqual(seen('first STOR'), { reply: '226', requests: { ListObjectsV2: 2, PutObject: 1 } });
    // One probe of the target (object, directory or neither) serves the permission check, the quota and the upload.
    assert.deepEqual(seen('STOR new'), { reply: '226', requests: { ListObjectsV2: 1, PutObject: 1 } });
    assert.deepEqual(seen('STOR over'), { reply: '226', requests: { ListObjectsV2: 1, PutObject: 1 } });
    assert.deepEqual(seen('MKD'), { reply: '257', requests: { ListObjectsV2: 1, PutObject: 1 } });
    // The directory was just created by this session: not asked about again before the upload.
    assert.deepEqual(seen('STOR in new dir'), { reply: '226', requests: { ListObjectsV2: 1, PutObject: 1 } });
    assert.deepEqual(seen('STOR in dir again'), { reply: '226', requests: { ListObjectsV2: 1, PutObject: 1 } });
    // A directory nobody created: 550 as on disk, after looking (nothing is written).
    assert.deepEqual(seen('STOR in missing dir'), { reply: '550', requests: { ListObjectsV2: 2 } });
    assert.deepEqual(seen('RETR'), { reply: '226', requests: { ListObjectsV2: 1, GetObject: 1 } });
    assert.deepEqual(seen('LIST root'), { reply: '226', requests: { ListObjectsV2: 1 } });
    assert.deepEqual(seen('LIST dir'), { reply: '226', requests: { ListObjectsV2: 2 } });
    // HASH: the SHA-256 from the object's metadata (HEAD), not by reading it.
    assert.deepEqual(seen('HASH'), { reply: '213', requests: { ListObjectsV2: 1, HeadObject: 1 } });
    assert.deepEqual(seen('DELE'), { reply: '250', requests: { ListObjectsV2: 1, DeleteObject: 1 } });
    // Two parts of 5 MiB at most; the SHA-256 is added after completion by copying the object onto itself.
    assert.deepEqual(seen('STOR multipart'), {
      reply: '226',
      requests: { ListObjectsV2: 1, CreateMultipartUpload: 1, UploadPart: 2, CompleteMultipartUpload: 1, CopyObject: 1 },
    });

    const stored = await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: `partners/${USER}/d/b.bin` }));
    assert.equal(stored.Metadata?.sha256, createHash('sha256').update(Buffer.alloc(4096, 'x')).digest('hex'), 'the SHA-256 went with the single PutObject');
    await assert.rejects(s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: `partners/${USER}/nowhere/x.bin` })), 'nothing stored under a directory that does not exist');
    const big = await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: `partners/${USER}/big.bin` }));
    assert.equal(big.Metadata?.sha256, createHash('sha256').update(Buffer.alloc(6 * 1024 * 1024, 'y')).digest('hex'));
  });

  test('ftplib: an upload into a directory another session removed a moment ago stores the file and brings the directory back; with storage.s3.dirCacheMs 0, 550', async () => {
    const removedThenStored = async (dir: string) => {
      const run = await runPython(`${PY_REUSE_FTP_TLS}\nimport sys\nsys.argv = ['x', '${t.port}', '${USER}', '${PASSWORD}', '${dir}']\n${REMOVED_DIR_SCRIPT}`);
      assert.equal(run.code, 0, run.stderr);
      const [before, stored, after] = run.stdout.trim().split('\n');
      assert.ok(!before!.includes(dir), `removed: ${before}`);
      return { stored: stored!, shown: after!.includes(`'${dir}'`) };
    };
    // Seen by the uploading session within dirCacheMs: not asked about again. The file is stored, never lost or hidden.
    assert.deepEqual(await removedThenStored('gone'), { stored: '226 Transfer complete', shown: true });
    const s3Settings = t.server.config.storage.s3;
    s3Settings.dirCacheMs = 0;
    try {
      // Checked before every upload: the removed directory is missing, as on disk.
      assert.deepEqual(await removedThenStored('gone2'), { stored: '550 Directory not found', shown: false });
    } finally {
      s3Settings.dirCacheMs = 10_000;
    }
  });
});
