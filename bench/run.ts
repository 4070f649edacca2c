import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CURL_UPLOAD_TLS_ARGS, runCurl } from '../test/helpers/clients.js';
import { freeDiskBytes, median } from './measure.js';
import { type BenchFiles, type Scenario, scenarios } from './scenarios.js';
import { type BenchTarget, type TargetName, startFtpsdTarget, startVsftpdTarget } from './targets.js';

// Side-by-side benchmark of ftpsd and vsftpd on loopback: both servers run at once, every scenario alternates
// between them round by round (which one goes first alternates too), and the report gives medians and the ratio
// ftpsd/vsftpd. Usage: npm run bench -- [--rounds 3] [--servers ftpsd,vsftpd] [--scenarios a,b,c,d,e] [--big-mib 1024]

const repoDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1024 * 1024;

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    servers: { type: 'string', default: 'ftpsd,vsftpd' },
    scenarios: { type: 'string', default: 'a,b,c,d,e' },
    'big-mib': { type: 'string', default: '1024' },
    'small-files': { type: 'string', default: '500' },
    'small-kib': { type: 'string', default: '4' },
    sessions: { type: 'string', default: '100' },
    'deadline-min': { type: 'string', default: '60' },
    json: { type: 'string' },
  },
});

const rounds = positive(args.rounds, 'rounds');
const bigBytes = positive(args['big-mib'], 'big-mib') * MiB;
const smallCount = positive(args['small-files'], 'small-files');
const smallBytes = positive(args['small-kib'], 'small-kib') * 1024;
const sessions = positive(args.sessions, 'sessions');
const deadline = Date.now() + positive(args['deadline-min'], 'deadline-min') * 60_000;
const serverNames = args.servers.split(',').filter((s): s is TargetName => s === 'ftpsd' || s === 'vsftpd');
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
  errors: Record<string, string>;
}

function format(v: number, unit: string): string {
  if (!Number.isFinite(v)) return 'n/a';
  const digits = unit === 's' ? 2 : v >= 100 ? 0 : 1;
  return `${v.toFixed(digits)} ${unit}`;
}

function report(rows: readonly Row[], targets: readonly BenchTarget[]): string {
  const lines: string[] = [];
  const pad = (s: string, n: number) => s.padEnd(n);
  lines.push(`${pad('scenario', 74)}${targets.map((t) => pad(t.name, 18)).join('')}ftpsd/vsftpd`);
  for (const row of rows) {
    const med: Record<string, number> = {};
    for (const t of targets) med[t.name] = median(row.values[t.name] ?? []);
    const cells = targets.map((t) => pad(row.errors[t.name] !== undefined ? 'FAILED' : format(med[t.name]!, row.scenario.unit), 18));
    const r = (med.ftpsd ?? Number.NaN) / (med.vsftpd ?? Number.NaN);
    const failed = Object.keys(row.errors).length > 0;
    const ratio = !failed && Number.isFinite(r) ? r.toFixed(2) : '';
    const better = row.scenario.higherIsBetter ? '(higher is better)' : '(lower is better)';
    lines.push(`${pad(`${row.scenario.id}) ${row.scenario.title}`, 74)}${cells.join('')}${ratio} ${ratio ? better : ''}`);
  }
  for (const row of rows) for (const [name, err] of Object.entries(row.errors)) lines.push(`  ${row.scenario.id}/${name}: ${err}`);
  const kinds = targets.map((t) => `${t.name}: ${t.memoryKind}`).join(', ');
  lines.push(`medians of ${rounds} rounds; memory is ${kinds}; MB = 10^6 bytes`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  if (serverNames.length === 0) throw new Error('--servers names none of ftpsd, vsftpd');
  const files = await makeFiles();
  const targets: BenchTarget[] = [];
  try {
    for (const name of serverNames) targets.push(name === 'ftpsd' ? await startFtpsdTarget(repoDir) : await startVsftpdTarget());
    for (const t of targets) {
      await smokeCheck(t, files);
      console.error(`${t.name} on 127.0.0.1:${t.port}: 1 MiB up/down over TLS verified`);
    }
    const rows: Row[] = [];
    for (const scenario of selected) {
      const row: Row = { scenario, values: {}, errors: {} };
      rows.push(row);
      for (const t of targets) await scenario.prepare?.(t, files);
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0 ? targets : [...targets].reverse();
        for (const t of order) {
          if (row.errors[t.name] !== undefined) continue;
          if (Date.now() > deadline) throw new Error('benchmark deadline passed');
          try {
            const v = await scenario.run(t, files, round);
            (row.values[t.name] ??= []).push(v);
            console.error(`  ${scenario.id} round ${round + 1} ${t.name}: ${format(v, scenario.unit)}`);
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
      const out = rows.map((r) => ({ id: r.scenario.id, title: r.scenario.title, unit: r.scenario.unit, values: r.values, errors: r.errors }));
      await writeFile(args.json, JSON.stringify({ date: new Date().toISOString(), rounds, results: out }, null, 2) + '\n');
    }
    if (rows.some((r) => Object.keys(r.errors).length > 0)) process.exitCode = 1;
  } finally {
    for (const t of targets) await t.stop().catch(() => {});
    await rm(files.dir, { recursive: true, force: true });
  }
}

await main();
