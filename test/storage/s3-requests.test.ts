import assert from 'node:assert/strict';
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
step('STOR new', lambda: ftp.storbinary('STOR /cloud/a.bin', io.BytesIO(body)))
step('STOR over', lambda: ftp.storbinary('STOR /cloud/a.bin', io.BytesIO(body)))
step('MKD', lambda: ftp.mkd('/cloud/d'))
step('STOR in new dir', lambda: ftp.storbinary('STOR /cloud/d/b.bin', io.BytesIO(body)))
step('STOR in dir again', lambda: ftp.storbinary('STOR /cloud/d/c.bin', io.BytesIO(body)))
step('STOR in missing dir', lambda: ftp.storbinary('STOR /cloud/nowhere/x.bin', io.BytesIO(body)))
step('RETR', lambda: ftp.retrbinary('RETR /cloud/a.bin', lambda b: None))
step('SIZE', lambda: ftp.sendcmd('SIZE /cloud/a.bin'))
step('HASH', lambda: ftp.sendcmd('HASH /cloud/a.bin'))
step('LIST root', lambda: ftp.retrlines('LIST /cloud', lambda l: None))
step('LIST dir', lambda: ftp.retrlines('LIST /cloud/d', lambda l: None))
step('CWD', lambda: ftp.cwd('/cloud/d'))
step('DELE', lambda: ftp.delete('/cloud/d/c.bin'))
ftp.quit()
print(json.dumps(steps))
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
      config: { defender: { enabled: false }, metrics: { enabled: true, host: '127.0.0.1', port: 0 }, storage: { s3: { locations: [s3.location('rgw')] } } },
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
    console.log(JSON.stringify(steps, null, 1));
    assert.ok((await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: `partners/${USER}/a.bin` }))).Metadata?.sha256);
  });
});
