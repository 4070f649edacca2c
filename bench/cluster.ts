// `npm run bench:cluster`: files per second and MB/s through 1, 2 and 3 ftpsd nodes behind HAProxy (send-proxy-v2,
// passive ranges forwarded), one PostgreSQL store, and the files in one shared folder or in a bucket of a Ceph radosgw
// (S3), all on this machine's loopback. Clients are Python ftplib processes (one FTPS session each, resuming TLS on
// every data connection) started together.
//
// Bounded: every round moves a fixed amount of work (workers x files), and each client is killed after 120 s.
// Arguments: --workers N (default 6) --files N (small files per worker, default 40) --small-kib N (default 64)
//            --big-mib N (one large upload per worker, default 16) --nodes 1,2,3 (shared folder)
//            --s3-nodes 1,3 (S3; empty: none). S3 is the radosgw named by FTPSD_TEST_S3_*, or one started for the run.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { CLIENT_IP, s3ClusterStorage, startCluster, type ClusterStorage } from '../test/helpers/cluster.js';
import { PY_REUSE_FTP_TLS, runPython } from '../test/helpers/clients.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { startS3, type TestS3 } from '../test/helpers/s3.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : (process.argv[i + 1] ?? fallback);
}

const workers = Number(arg('workers', '6'));
const files = Number(arg('files', '40'));
const smallKib = Number(arg('small-kib', '64'));
const bigMib = Number(arg('big-mib', '16'));
const nodeCounts = arg('nodes', '1,2,3').split(',').filter((n) => n !== '').map(Number);
const s3NodeCounts = arg('s3-nodes', '1,3').split(',').filter((n) => n !== '').map(Number);

const PARTNERS = `
users:
  bench:
    home: '{root}/bench'
    permissions: { /: [list, download, upload, overwrite, delete, mkdir] }
`;
const PASSWORD = 'bench-Secret-1';

/** One client process: a session through the balancer, `count` uploads of `file` as w<id>-<i>, then QUIT. */
function client(port: number, id: number, file: string, count: number): Promise<{ ok: boolean; stderr: string }> {
  const code =
    PY_REUSE_FTP_TLS +
    String.raw`
import io
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
ftp = ReusedSessionFTP_TLS(context=ctx, timeout=60, source_address=('${CLIENT_IP}', 0))
ftp.connect('127.0.0.1', ${port}); ftp.auth(); ftp.login('bench', '${PASSWORD}'); ftp.prot_p()
data = open('${file}', 'rb').read()
for i in range(${count}):
    ftp.storbinary('STOR w${id}-%d-' % i + '${file.split('/').pop()}', io.BytesIO(data), blocksize=262144)
ftp.quit()
`;
  return runPython(code, { timeoutMs: 120_000 }).then((r) => ({ ok: r.code === 0, stderr: r.stderr }));
}

async function round(port: number, file: string, count: number): Promise<{ seconds: number; failed: number }> {
  const started = process.hrtime.bigint();
  const results = await Promise.all(Array.from({ length: workers }, (_, w) => client(port, w, file, count)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const failed = results.filter((r) => !r.ok);
  for (const f of failed.slice(0, 2)) console.error(f.stderr.split('\n').slice(-3).join('\n'));
  return { seconds, failed: failed.length };
}

const postgres = await startPostgres();
const s3: TestS3 | null = s3NodeCounts.length > 0 ? await startS3() : null;
const rows: string[] = [];
const runs: Array<{ n: number; storage: 'local' | 's3' }> = [...nodeCounts.map((n) => ({ n, storage: 'local' as const })), ...s3NodeCounts.map((n) => ({ n, storage: 's3' as const }))];
const loads: number[] = [];
try {
  for (const { n, storage } of runs) {
    const onS3: ((dir: string) => ClusterStorage) | undefined = storage === 's3' ? s3ClusterStorage(s3!.location('rgw'), await s3!.newBucket(), 'partners') : undefined;
    const c = await startCluster({
      layout: 'balanced',
      nodes: n,
      partners: PARTNERS,
      passwords: { bench: PASSWORD },
      postgres,
      ...(onS3 === undefined ? {} : { storage: onS3 }),
      config: { log: { level: 'warn' }, pasv: { maxListenersPerUser: 20, maxListenersPerAddress: 20 } },
    });
    try {
      if (storage === 'local') await mkdir(join(c.storage.root, 'bench'), { recursive: true });
      const small = join(c.dir, 'small.bin');
      const big = join(c.dir, 'big.bin');
      await writeFile(small, randomBytes(smallKib * 1024));
      await writeFile(big, randomBytes(bigMib * 1024 * 1024));
      await round(c.port, small, 2); // warm-up: connections, JIT, page cache
      loads.push(loadavg()[0]!);
      const s = await round(c.port, small, files);
      const b = await round(c.port, big, 1);
      loads.push(loadavg()[0]!);
      const filesPerSecond = (workers * files) / s.seconds;
      const mbPerSecond = (workers * bigMib * 1.048576) / b.seconds;
      rows.push(`| ${n} | ${storage === 's3' ? 'S3 (radosgw)' : 'shared folder'} | ${workers} | ${filesPerSecond.toFixed(1)} | ${mbPerSecond.toFixed(1)} | ${s.failed + b.failed} |`);
      console.error(`nodes ${n}, ${storage}: ${filesPerSecond.toFixed(1)} files/s (${smallKib} KiB), ${mbPerSecond.toFixed(1)} MB/s (${bigMib} MiB files)`);
    } finally {
      await c.close();
    }
  }
} finally {
  await s3?.stop();
  await postgres.stop();
}
console.log(`\n${cpus().length} CPUs, load average ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)} during the rounds; ${workers} ftplib clients at once; ${files} uploads of ${smallKib} KiB each, then one of ${bigMib} MiB each\n`);
console.log('| nodes | files on | clients | files/s | MB/s | failed clients |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
