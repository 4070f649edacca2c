import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CURL_UPLOAD_TLS_ARGS, runCurl } from '../test/helpers/clients.js';
import { freeDiskBytes, median } from './measure.js';
import { type BenchFiles, type Scenario, scenarios, warmUp } from './scenarios.js';
import { type BenchTarget, TARGET_NAMES, type TargetName, isPeer, startFtpsdTarget, startNodeFloorTarget, startPureFtpdTarget, startVsftpdTarget } from './targets.js';

// Side-by-side benchmark of ftpsd, vsftpd and Pure-FTPd on loopback: the servers run at once, every scenario
// alternates between them round by round (the order rotates too), and the report gives medians, the server CPU per
// unit of work, and the ratio of ftpsd to the best peer (and to node-floor, bench/ftp-floor.ts, when it runs too).
// Usage: npm run bench -- [--rounds 3] [--servers ftpsd,vsftpd,pure-ftpd[,node-floor]] [--scenarios a,b,c,d,e,f]
// [--big-mib 1024] [--warmup 4] [--cpu-prof DIR]

const repoDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1024 * 1024;

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    servers: { type: 'string', default: 'ftpsd,vsftpd,pure-ftpd' },
    scenarios: { type: 'string', default: 'a,b,c,d,e,f' },
    'big-mib': { type: 'string', default: '1024' },
    'small-files': { type: 'string', default: '500' },
    'small-kib': { type: 'string', default: '4' },
    sessions: { type: 'string', default: '100' },
    'deadline-min': { type: 'string', default: '60' },
    // Passes of the small files up and down (lftp, TLS 1.2) each server gets, unmeasured, before the first round; 0: none.
    warmup: { type: 'string', default: '4' },
    json: { type: 'string' },
    // ftpsd runs with --cpu-prof and writes its profile here when it stops (bench/profile-summary.ts reads it).
    'cpu-prof': { type: 'string' },
    // Another checkout of ftpsd with its dist/ built: added as server "ftpsd-baseline", for before/after in one run.
    baseline: { type: 'string' },
  },
});

const rounds = positive(args.rounds, 'rounds');
const bigBytes = positive(args['big-mib'], 'big-mib') * MiB;
const smallCount = positive(args['small-files'], 'small-files');
const smallBytes = positive(args['small-kib'], 'small-kib') * 1024;
const sessions = positive(args.sessions, 'sessions');
const warmupPasses = Number(args.warmup);
if (!Number.isInteger(warmupPasses) || warmupPasses < 0) throw new Error('--warmup must be 0 or a positive integer');
const deadline = Date.now() + positive(args['deadline-min'], 'deadline-min') * 60_000;
const serverNames = (args.baseline !== undefined && !args.servers.includes('ftpsd-baseline') ? `${args.servers},ftpsd-baseline` : args.servers).split(',').filter((s): s is TargetName => (TARGET_NAMES as readonly string[]).includes(s));
const wanted = new Set(args.scenarios.split(','));

const limits = {
  // 1 GiB at a pessimistic 20 MB/s.
  bigTransferTimeoutMs: Math.max(60_000, (bigBytes / 20e6) * 1000),
  smallFilesTimeoutMs: 300_000,
  sessions,
  sessionTimeoutMs: 30_000,
  settleMs: 1_000,
  rampSpacingMs: 10,
};
// --scenarios c selects every small-file row (c-up, c-down, c12-up, c12-down).
const selected = scenarios(limits).filter((s) => wanted.has(s.id) || wanted.has(s.id.split('-')[0]!) || wanted.has(s.id[0]!));

function positive(v: string | undefined, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`);
  return n;
}

async function makeFiles(): Promise<BenchFiles> {
  const dir = await mkdtemp(join(tmpdir(), 'ftp-bench-data-'));
  const needBytes = 3 * bigBytes + 256 * MiB; // source + one upload per server at a time + margin
  const free = await freeDiskBytes(dir);
  if (free < needBytes) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`need ${(needBytes / MiB).toFixed(0)} MiB free in ${tmpdir()}, have ${(free / MiB).toFixed(0)} MiB`);
  }
  const big = join(dir, 'big.bin');
  const medium = join(dir, 'medium.bin');
  const smallDir = join(dir, 'small');
  await mkdir(smallDir);
  // Random bytes, world-readable: vsftpd's session processes run as its FTP user and read these through hard links.
  execFileSync('sh', ['-c', `head -c ${bigBytes} /dev/urandom > "$1" && chmod 644 "$1"`, 'sh', big]);
  execFileSync('sh', ['-c', `head -c ${MiB} /dev/urandom > "$1" && chmod 644 "$1"`, 'sh', medium]);
  execFileSync('sh', [
    '-c',
    `i=0; while [ $i -lt ${smallCount} ]; do head -c ${smallBytes} /dev/urandom > "$1/f$(printf %04d $i).bin"; i=$((i+1)); done`,
    'sh',
    smallDir,
  ]);
  return { dir, big, bigBytes, smallDir, smallCount, medium, mediumBytes: MiB };
}

/** Both servers must take a 1 MiB upload and give it back intact over --ssl-reqd before anything is measured. */
async function smokeCheck(t: BenchTarget, files: BenchFiles): Promise<void> {
  const url = `ftp://${encodeURIComponent(t.user)}:${encodeURIComponent(t.password)}@127.0.0.1:${t.port}/smoke.bin`;
  const back = join(files.dir, `smoke-${t.name}.bin`);
  const up = await runCurl(['--ssl-reqd', '-k', ...CURL_UPLOAD_TLS_ARGS, '-T', files.medium, url]);
  if (up.code !== 0) throw new Error(`${t.name}: 1 MiB upload failed: ${up.stderr.trim()}`);
  const down = await runCurl(['--ssl-reqd', '-k', '-o', back, url]);
  if (down.code !== 0) throw new Error(`${t.name}: 1 MiB download failed: ${down.stderr.trim()}`);
  const [a, b] = await Promise.all([readFile(files.medium), readFile(back)]);
  await rm(back, { force: true });
  await rm(join(t.dataDir, 'smoke.bin'), { force: true });
  if (!a.equals(b)) throw new Error(`${t.name}: 1 MiB file came back different`);
  // Without TLS the servers must refuse the login.
  const plain = await runCurl(['-o', '/dev/null', url]);
  if (plain.code === 0) throw new Error(`${t.name}: accepted a login without TLS`);
}

interface Row {
  scenario: Scenario;
  values: Record<string, number[]>;
  cpu: Record<string, number[]>;
  errors: Record<string, string>;
}

function format(v: number, unit: string): string {
  if (!Number.isFinite(v)) return 'n/a';
  const digits = unit === 's' || unit === 's/GB' || (unit === 'ms/file' && v < 10) ? 2 : v >= 100 ? 0 : 1;
  return `${v.toFixed(digits)} ${unit}`;
}

/** ftpsd's median over the best peer's (the highest rate, or the lowest time, memory or CPU), with the peer's name. */
function ratioToBestPeer(medians: Record<string, number>, higherIsBetter: boolean): string {
  const own = medians.ftpsd;
  const peers = Object.entries(medians).filter(([name, v]) => isPeer(name) && Number.isFinite(v));
  if (own === undefined || !Number.isFinite(own) || peers.length === 0) return '';
  const [name, best] = peers.reduce((a, b) => ((higherIsBetter ? b[1] > a[1] : b[1] < a[1]) ? b : a));
  const baseline = medians['ftpsd-baseline'];
  const before = baseline !== undefined && Number.isFinite(baseline) ? `; ${(own / baseline).toFixed(2)} vs baseline` : '';
  const floor = medians['node-floor'];
  const overFloor = floor !== undefined && Number.isFinite(floor) ? `; ${(own / floor).toFixed(2)} vs node-floor` : '';
  return `${(own / best).toFixed(2)} vs ${name}${before}${overFloor}`;
}

function report(rows: readonly Row[], targets: readonly BenchTarget[]): string {
  const lines: string[] = [];
  const pad = (s: string, n: number) => s.padEnd(n);
  const w = 78;
  lines.push(`${pad('scenario', w)}${targets.map((t) => pad(t.name, 17)).join('')}ftpsd / best peer`);
  for (const row of rows) {
    const failed = (name: string) => row.errors[name] !== undefined;
    const med: Record<string, number> = {};
    const cpu: Record<string, number> = {};
    for (const t of targets) {
      if (failed(t.name)) continue;
      med[t.name] = median(row.values[t.name] ?? []);
      cpu[t.name] = median(row.cpu[t.name] ?? []);
    }
    const cells = (m: Record<string, number>, unit: string) => targets.map((t) => pad(failed(t.name) ? 'FAILED' : format(m[t.name]!, unit), 17)).join('');
    const better = row.scenario.higherIsBetter ? 'higher is better' : 'lower is better';
    const r = ratioToBestPeer(med, row.scenario.higherIsBetter);
    lines.push(`${pad(`${row.scenario.id}) ${row.scenario.title}`, w)}${cells(med, row.scenario.unit)}${r}${r ? ` (${better})` : ''}`);
    const rc = ratioToBestPeer(cpu, false);
    lines.push(`${pad(`   server CPU per unit of work`, w)}${cells(cpu, row.scenario.cpuUnit)}${rc}`);
  }
  for (const row of rows) for (const [name, err] of Object.entries(row.errors)) lines.push(`  ${row.scenario.id}/${name}: ${err}`);
  const kinds = targets.map((t) => `${t.name}: ${t.memoryKind}`).join(', ');
  lines.push(`medians of ${rounds} rounds; memory is ${kinds}; server CPU is user + system time of the whole process tree; MB = 10^6 bytes`);
  return lines.join('\n');
}

async function startTarget(name: TargetName): Promise<BenchTarget> {
  switch (name) {
    case 'ftpsd':
      return startFtpsdTarget(repoDir, args['cpu-prof'] === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', resolve(args['cpu-prof'])]);
    case 'ftpsd-baseline':
      if (args.baseline === undefined) throw new Error('ftpsd-baseline needs --baseline DIR');
      return startFtpsdTarget(resolve(args.baseline), [], 'ftpsd-baseline');
    case 'vsftpd':
      return startVsftpdTarget();
    case 'pure-ftpd':
      return startPureFtpdTarget(repoDir);
    case 'node-floor':
      return startNodeFloorTarget(repoDir);
  }
}

async function main(): Promise<void> {
  if (serverNames.length === 0) throw new Error(`--servers names none of ${TARGET_NAMES.join(', ')}`);
  const files = await makeFiles();
  const targets: BenchTarget[] = [];
  // Stopped from outside (Ctrl-C, kill): the servers it started and its data files go too, not left running.
  const onSignal = (signal: NodeJS.Signals) => {
    console.error(`bench: ${signal}, stopping the servers`);
    void Promise.allSettled(targets.map((t) => t.stop()))
      .then(() => rm(files.dir, { recursive: true, force: true }))
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    for (const name of serverNames) targets.push(await startTarget(name));
    for (const t of targets) {
      await smokeCheck(t, files);
      console.error(`${t.name} on 127.0.0.1:${t.port}: 1 MiB up/down over TLS verified`);
    }
    if (warmupPasses > 0) {
      for (const t of targets) await warmUp(t, files, warmupPasses, limits);
      console.error(`warm-up: ${warmupPasses} x ${smallCount} small files up and down per server (lftp, TLS 1.2), not measured`);
    }
    const rows: Row[] = [];
    for (const scenario of selected) {
      const row: Row = { scenario, values: {}, cpu: {}, errors: {} };
      rows.push(row);
      for (const t of targets) await scenario.prepare?.(t, files);
      for (let round = 0; round < rounds; round++) {
        // Each server goes first in turn.
        const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
        for (const t of order) {
          if (row.errors[t.name] !== undefined) continue;
          if (Date.now() > deadline) throw new Error('benchmark deadline passed');
          try {
            const m = await scenario.run(t, files, round);
            (row.values[t.name] ??= []).push(m.value);
            (row.cpu[t.name] ??= []).push(m.cpu);
            console.error(`  ${scenario.id} round ${round + 1} ${t.name}: ${format(m.value, scenario.unit)}, server CPU ${format(m.cpu, scenario.cpuUnit)}`);
          } catch (err) {
            row.errors[t.name] = (err as Error).message.split('\n')[0]!;
            console.error(`  ${scenario.id} round ${round + 1} ${t.name}: ${row.errors[t.name]}`);
          }
        }
      }
    }
    const text = report(rows, targets);
    console.log(text);
    if (args.json !== undefined) {
      const out = rows.map((r) => ({ id: r.scenario.id, title: r.scenario.title, unit: r.scenario.unit, values: r.values, cpuUnit: r.scenario.cpuUnit, cpu: r.cpu, errors: r.errors }));
      await writeFile(args.json, JSON.stringify({ date: new Date().toISOString(), rounds, results: out }, null, 2) + '\n');
    }
    if (rows.some((r) => Object.keys(r.errors).length > 0)) process.exitCode = 1;
  } finally {
    for (const t of targets) await t.stop().catch(() => {});
    await rm(files.dir, { recursive: true, force: true });
  }
}

await main();
