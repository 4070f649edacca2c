import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runCurl, runLftp, runProcess } from '../test/helpers/clients.js';
import { sleep } from './measure.js';
import { startFtpsdTarget } from './targets.js';

// Profiles one piece of work on ftpsd: starts it with --cpu-prof, prepares, waits, does the work once, waits, stops
// it, and prints bench/profile-summary.ts's summary of the measured window, per unit of work. The server measured is
// the build in dist/ (npm run build first).
// Usage: node --import tsx bench/profile.ts --work small-up|small-down|ftplib|big-down|big-up [--files 500]
//        [--big-mib 1024] [--out DIR] [--perf | --strace] [--tls12]

const repoDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    work: { type: 'string', default: 'small-up' },
    files: { type: 'string', default: '500' },
    'big-mib': { type: 'string', default: '1024' },
    out: { type: 'string', default: join(repoDir, 'bench/results/profiles') },
    // Also samples the server with `perf record` (true CPU time, kernel included) while the work runs.
    perf: { type: 'boolean', default: false },
    // Counts the server's system calls (all threads) during the work with `strace -c -f`, printed per unit of work.
    strace: { type: 'boolean', default: false },
    // lftp without TLS 1.3 (GnuTLS priority string), to compare the two versions' cost per data connection.
    tls12: { type: 'boolean', default: false },
  },
});
const files = Number(args.files);
const bigBytes = Number(args['big-mib']) * 1024 * 1024;
/** Longer than profile-summary's idle gap, so the measured window stands out. */
const QUIET_MS = 1_500;

const outDir = resolve(args.out, `${args.work}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
await mkdir(outDir, { recursive: true });
const data = await mkdtemp(join(tmpdir(), 'ftpsd-profile-'));
// --perf-basic-prof writes /tmp/perf-PID.map, which names JIT-compiled JavaScript functions in perf's report.
// Under strace the server runs without --cpu-prof: its sampling signals would outnumber every other system call.
// Under perf too: the V8 sampler's signals and thread would be a tenth of what perf sees.
const t = await startFtpsdTarget(repoDir, args.strace ? [] : args.perf ? ['--perf-basic-prof'] : ['--cpu-prof', '--cpu-prof-dir', outDir]);
const perfData = join(outDir, 'perf.data');
let perfRecord: ChildProcess | null = null;
const straceOut = join(outDir, 'strace.txt');
/** Server CPU (user + system, all threads) from /proc when the work starts, in clock ticks. */
let cpuAtStart: number | null = null;
const cpuTicks = async (): Promise<number> => {
  const fields = (await readFile(`/proc/${t.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
};
/** Starts `perf record` / `strace -c` on the server once the work is about to begin (after the preparation). */
const startPerf = async (): Promise<void> => {
  if (args.perf) perfRecord = spawn('perf', ['record', '-F', '2000', '-g', '-p', String(t.pid), '-o', perfData], { stdio: 'ignore' });
  else if (args.strace) perfRecord = spawn('strace', ['-c', '-f', '-p', String(t.pid), '-o', straceOut], { stdio: 'ignore' });
  if (perfRecord !== null) await sleep(300);
  cpuAtStart = await cpuTicks();
};
let cpuUsed: number | null = null;
const stopPerf = async (): Promise<void> => {
  if (cpuAtStart !== null && cpuUsed === null) cpuUsed = (await cpuTicks()) - cpuAtStart;
  const p = perfRecord;
  if (p === null) return;
  perfRecord = null;
  p.kill('SIGINT');
  await once(p, 'exit');
};
let per = files;
let unit = 'file';
try {
  const small = join(data, 'small');
  const back = join(data, 'back');
  await mkdir(small);
  await mkdir(back);
  execFileSync('sh', ['-c', `i=0; while [ $i -lt ${files} ]; do head -c 4096 /dev/urandom > "$1/f$(printf %04d $i).bin"; i=$((i+1)); done`, 'sh', small]);
  const lftp = async (script: string) => {
    const r = await runLftp(`${args.tls12 ? 'set ssl:priority NORMAL:-VERS-TLS1.3\n' : ''}${script}`, { port: t.port, user: t.user, password: t.password, timeoutMs: 600_000 });
    if (r.code !== 0) throw new Error(`lftp: ${r.stderr.slice(-500)}`);
  };
  const url = (p: string) => `ftp://${t.user}:${encodeURIComponent(t.password)}@127.0.0.1:${t.port}/${p}`;
  switch (args.work) {
    case 'small-up':
      await sleep(QUIET_MS);
      await startPerf();
      await lftp(`mkdir up\nmput -O up ${small}/*`);
      break;
    case 'small-down':
      await lftp(`mkdir up\nmput -O up ${small}/*`);
      await sleep(QUIET_MS);
      await startPerf();
      await lftp(`mget -O ${back} up/*`);
      if ((await readdir(back)).length !== files) throw new Error('not every file came back');
      break;
    case 'ftplib': {
      // Up and down in one session (bench/ftplib_small.py); the summary covers both halves.
      await sleep(QUIET_MS);
      await startPerf();
      const r = await runProcess('python3', [join(repoDir, 'bench/ftplib_small.py'), String(t.port), 'py', small, back, String(t.pid)], {
        env: { FTP_USER: t.user, FTP_PASSWORD: t.password },
        timeoutMs: 600_000,
      });
      if (r.code !== 0) throw new Error(`ftplib: ${r.stderr.slice(-500)}`);
      unit = 'file up+down';
      break;
    }
    case 'big-down':
    case 'big-up': {
      const big = join(data, 'big.bin');
      execFileSync('sh', ['-c', `head -c ${bigBytes} /dev/urandom > "$1"`, 'sh', big]);
      if (args.work === 'big-down') execFileSync('ln', [big, join(t.dataDir, 'big.bin')]);
      await sleep(QUIET_MS);
      await startPerf();
      const r = args.work === 'big-down'
        ? await runCurl(['--ssl-reqd', '-k', '-o', '/dev/null', url('big.bin')], { timeoutMs: 600_000 })
        : await runCurl(['--ssl-reqd', '-k', '--tls-max', '1.2', '-T', big, url('up.bin')], { timeoutMs: 600_000 });
      if (r.code !== 0) throw new Error(`curl: ${r.stderr}`);
      per = bigBytes / 1e9;
      unit = 'GB';
      break;
    }
    default:
      throw new Error(`unknown --work ${args.work}`);
  }
  await stopPerf();
  await sleep(QUIET_MS);
} finally {
  await stopPerf();
  await t.stop();
  await rm(data, { recursive: true, force: true });
}
// One profile per thread: the main thread's, then the digest worker's (which is idle before and after the work too).
const profiles = (await readdir(outDir)).filter((f) => f.endsWith('.cpuprofile')).sort();
if (profiles.length === 0 && !args.strace && !args.perf) throw new Error(`no profile written in ${outDir}`);
for (const profile of profiles) {
  const summary = await runProcess(process.execPath, ['--import', 'tsx', join(repoDir, 'bench/profile-summary.ts'), join(outDir, profile), '--window', '--per', String(per), '--unit', unit]);
  console.log(summary.stdout + summary.stderr);
}
if (cpuUsed !== null) console.log(`server CPU (/proc, all threads) during the work: ${((cpuUsed * 10) / per).toFixed(2)} ms per ${unit}${args.perf || args.strace ? ' (under the tracer: higher than without)' : ''}`);
if (args.strace) {
  // strace -c's table, with a column of calls per unit of work.
  const lines = (await readFile(straceOut, 'utf8')).split('\n');
  console.log(`strace -c -f (${per} ${unit}): calls per ${unit}, syscall`);
  for (const l of lines) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\S+)\s*$/.exec(l);
    if (m) console.log(`${(Number(m[1]) / per).toFixed(1).padStart(8)}  ${m[2]}`);
  }
}
if (args.perf) {
  // Self time by library (kernel, libcrypto, node, JIT code...) and the top symbols, from true CPU samples.
  for (const sort of ['dso', 'dso,sym']) {
    const report = await runProcess('perf', ['report', '-i', perfData, '--no-children', '--sort', sort, '--stdio', '--percent-limit', '0.7', '-g', 'none'], { timeoutMs: 300_000 });
    console.log(`perf report --sort ${sort} (${per} ${unit}):\n${report.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('#')).join('\n')}`);
  }
}
