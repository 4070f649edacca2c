// Cost per file of a folder on S3 (Ceph radosgw) against a folder on local disk, through one ftpsd.
//
//   node --import tsx bench/s3.ts [--files 200] [--kib 4] [--rounds 3]
//
// One server, one user with /disk (a local folder) and /s3 (a folder on a bucket); each round stores --files files of
// --kib KiB with Python's ftplib in one session and retrieves them (bench/ftplib_small.py), in /disk then /s3 (the
// order alternates by round). Prints the medians: files/s, ftpsd CPU per file, and for /s3 also radosgw's CPU per
// file (store and retrieve together), which on one machine competes with ftpsd for the same cores. Uses the run's
// radosgw when FTPSD_TEST_S3_* are set (scripts/test.sh), else starts its own (scripts/start-ceph-rgw.sh, as root).
// Bounded: --deadline-min (default 15) stops it.
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { runProcess } from '../test/helpers/clients.js';
import { median, parseCpuMarks, treeCpuSeconds } from './measure.js';
import { waitForGreeting } from './pureftpd.js';

const run = promisify(execFile);
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const FTPLIB_SCRIPT = join(REPO, 'bench', 'ftplib_small.py');
const CEPH_SCRIPT = join(REPO, 'scripts', 'start-ceph-rgw.sh');

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
}

const FILES = arg('files', 200);
const KIB = arg('kib', 4);
const ROUNDS = arg('rounds', 3);
const DEADLINE = Date.now() + arg('deadline-min', 15) * 60_000;

interface Engine {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** radosgw's pid, when known: its CPU is measured too. */
  rgwPid: number | null;
  stop(): Promise<void>;
}

async function rgwPid(dir: string | undefined): Promise<number | null> {
  if (dir === undefined) return null;
  return Number((await readFile(join(dir, 'run', 'client.rgw.gw.pid'), 'utf8').catch(() => '')).trim()) || null;
}

async function engine(root: string): Promise<Engine> {
  const env = process.env;
  if (env.FTPSD_TEST_S3_ENDPOINT !== undefined) {
    return { endpoint: env.FTPSD_TEST_S3_ENDPOINT, accessKeyId: env.FTPSD_TEST_S3_ACCESS_KEY!, secretAccessKey: env.FTPSD_TEST_S3_SECRET_KEY!, rgwPid: await rgwPid(env.FTPSD_TEST_S3_DIR), stop: async () => undefined };
  }
  const dir = join(root, 'ceph');
  const port = 36_000 + Math.floor(Math.random() * 1_000);
  const { stdout } = await run('bash', [CEPH_SCRIPT, 'start', dir, String(port), String(port + 1_000)], { timeout: 240_000 });
  const vars = Object.fromEntries(stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  return { endpoint: vars.FTPSD_TEST_S3_ENDPOINT!, accessKeyId: vars.FTPSD_TEST_S3_ACCESS_KEY!, secretAccessKey: vars.FTPSD_TEST_S3_SECRET_KEY!, rgwPid: await rgwPid(dir), stop: () => run('bash', [CEPH_SCRIPT, 'stop', dir]).then(() => undefined) };
}

interface Row {
  up: number[];
  down: number[];
  upCpu: number[];
  downCpu: number[];
  rgwCpu: number[];
}

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const root = await mkdtemp(join(tmpdir(), 'ftpsd-bench-s3-'));
  const s3 = await engine(root);
  const bin = join(REPO, 'bin', 'ftpsd.js');
  let server: ReturnType<typeof spawn> | null = null;
  try {
    const bucket = `bench-${randomBytes(4).toString('hex')}`;
    const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    client.destroy();

    const port = 37_000 + Math.floor(Math.random() * 1_000);
    const pasv = 39_500 + Math.floor(Math.random() * 20) * 20;
    const configFile = join(root, 'ftpsd.yaml');
    const config = {
      listen: { host: '127.0.0.1', port },
      pasv: { minPort: pasv, maxPort: pasv + 19 },
      tls: { selfSignedDir: join(root, 'certs') },
      users: { file: join(root, 'users.yaml') },
      store: { path: join(root, 'ftpsd.db') },
      log: { auditFile: join(root, 'audit', 'audit.jsonl') },
      defender: { enabled: false },
      admin: { enabled: false },
      storage: { s3: { locations: [{ name: 'rgw', endpoint: s3.endpoint, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey }] } },
    };
    await writeFile(configFile, JSON.stringify(config, null, 2) + '\n'); // JSON is YAML
    const partners = {
      folders: { disk: { path: join(root, 'disk') }, s3: { path: `s3://rgw/${bucket}/bench` } },
      users: { bench: { home: join(root, 'home'), mounts: { '/disk': 'disk', '/s3': 's3' }, permissions: { '/': ['list', 'download', 'upload', 'overwrite', 'delete', 'mkdir'] } } },
    };
    await writeFile(join(root, 'partners.yaml'), JSON.stringify(partners));
    const password = randomBytes(12).toString('base64url');
    for (const [args, input] of [[['apply', '-f', join(root, 'partners.yaml')], ''], [['user', 'passwd', 'bench'], `${password}\n`]] as const) {
      const r = await runProcess(process.execPath, [bin, ...args, '--config', configFile], { cwd: root, input, env: { FTPSD_CONFIG: '' } });
      if (r.code !== 0) throw new Error(`ftpsd ${args.join(' ')}: ${r.stderr}`);
    }
    await mkdir(join(root, 'disk'), { recursive: true });
    const source = join(root, 'source');
    await mkdir(source);
    for (let i = 0; i < FILES; i++) await writeFile(join(source, `f${String(i).padStart(5, '0')}.bin`), randomBytes(KIB * 1024));

    server = spawn(process.execPath, [bin, 'serve', '--config', configFile], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
    await waitForGreeting(port, server, 30_000, 100);
    const pid = server.pid!;
    const rows: Record<'disk' | 's3', Row> = { disk: { up: [], down: [], upCpu: [], downCpu: [], rgwCpu: [] }, s3: { up: [], down: [], upCpu: [], downCpu: [], rgwCpu: [] } };
    for (let round = 0; round < ROUNDS && Date.now() < DEADLINE; round++) {
      const order: Array<'disk' | 's3'> = round % 2 === 0 ? ['disk', 's3'] : ['s3', 'disk'];
      for (const where of order) {
        const out = join(root, `out-${where}-${round}`);
        await mkdir(out);
        const rgwBefore = s3.rgwPid === null ? 0 : await treeCpuSeconds(s3.rgwPid);
        const r = await runProcess('python3', [FTPLIB_SCRIPT, String(port), `/${where}/r${round}`, source, out, String(pid)], { env: { FTP_USER: 'bench', FTP_PASSWORD: password }, timeoutMs: Math.max(10_000, DEADLINE - Date.now()) });
        const rgwAfter = s3.rgwPid === null ? 0 : await treeCpuSeconds(s3.rgwPid);
        const marks = parseCpuMarks(r.stdout);
        if (r.code !== 0 || marks.length !== 3 || (await readdir(out)).length !== FILES) throw new Error(`ftplib ${where}: code ${r.code}: ${r.stderr.slice(-500)}`);
        const [a, b, c] = marks as [(typeof marks)[0], (typeof marks)[0], (typeof marks)[0]];
        const row = rows[where];
        row.up.push(FILES / (Number(b.ns - a.ns) / 1e9));
        row.down.push(FILES / (Number(c.ns - b.ns) / 1e9));
        row.upCpu.push(((b.cpu - a.cpu) * 1000) / FILES);
        row.downCpu.push(((c.cpu - b.cpu) * 1000) / FILES);
        row.rgwCpu.push(((rgwAfter - rgwBefore) * 1000) / FILES);
        await rm(out, { recursive: true, force: true });
      }
    }
    const f = (n: number, d = 1) => n.toFixed(d);
    console.log(`${FILES} files of ${KIB} KiB, ${rows.disk.up.length} rounds (medians), ftplib, one session`);
    console.log('folder  store files/s  ftpsd ms/file  retrieve files/s  ftpsd ms/file  radosgw ms/file (both)');
    for (const where of ['disk', 's3'] as const) {
      const r = rows[where];
      const rgw = where === 's3' && s3.rgwPid !== null ? f(median(r.rgwCpu), 2) : '-';
      console.log(`${where.padEnd(6)}  ${f(median(r.up)).padStart(13)}  ${f(median(r.upCpu), 2).padStart(13)}  ${f(median(r.down)).padStart(16)}  ${f(median(r.downCpu), 2).padStart(13)}  ${rgw.padStart(22)}`);
    }
  } finally {
    server?.kill('SIGTERM');
    await s3.stop();
    await rm(root, { recursive: true, force: true });
  }
}

await main();
