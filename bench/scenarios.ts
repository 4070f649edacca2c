import { link, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { Client } from 'basic-ftp';
import { CURL_UPLOAD_TLS_ARGS, runCurl, runLftp, runProcess } from '../test/helpers/clients.js';
import { openIdleSession, type IdleSession } from './idle-session.js';
import { type CpuMark, TREE_CPU_SCRIPT, mapLimit, parseCpuMarks, sleep } from './measure.js';
import type { BenchTarget } from './targets.js';

// One function per measured scenario. Each returns one measurement for one round against one server; the driver runs
// them alternately against every server and takes medians.

export type Unit = 'MB/s' | 'files/s' | 'KiB/session' | 's';
/** Server CPU (user + system of its whole process tree) per unit of the scenario's work. */
export type CpuUnit = 's/GB' | 'ms/file' | 'ms/session';

export interface Measurement {
  value: number;
  /** Server CPU per unit of work, in the scenario's cpuUnit. */
  cpu: number;
}

export interface Scenario {
  id: string;
  title: string;
  unit: Unit;
  cpuUnit: CpuUnit;
  /** For memory and wall time lower is better; for rates higher is. */
  higherIsBetter: boolean;
  /** Puts what the scenario reads into the server's data directory (hard links: no extra disk). */
  prepare?(target: BenchTarget, files: BenchFiles): Promise<void>;
  run(target: BenchTarget, files: BenchFiles, round: number): Promise<Measurement>;
}

export interface BenchFiles {
  dir: string;
  /** The large file for a) and b). */
  big: string;
  bigBytes: number;
  /** Directory of the small files for c). */
  smallDir: string;
  smallCount: number;
  /** The 1 MiB file of e). */
  medium: string;
  mediumBytes: number;
}

export interface ScenarioLimits {
  /** Upper bound for one large transfer. */
  bigTransferTimeoutMs: number;
  /** Upper bound for one lftp run over all small files. */
  smallFilesTimeoutMs: number;
  /** Sessions held open in d) and run at once in e). */
  sessions: number;
  /** Upper bound for one session's login (d) or whole work (e). */
  sessionTimeoutMs: number;
  /** Wait after opening or closing idle sessions before reading memory, so the servers settle. */
  settleMs: number;
  /** Gap between session starts in e-ramp: a burst of 100 SYNs overflows a listen backlog of 32 (vsftpd's). */
  rampSpacingMs: number;
}

const MB = 1_000_000;
const GB = 1e9;

/** Runs `work` between two readings of the server's CPU; returns its result and the CPU seconds it cost the server. */
async function withServerCpu<T>(t: BenchTarget, work: () => Promise<T>): Promise<{ result: T; cpu: number }> {
  const before = await t.cpuSeconds();
  const result = await work();
  return { result, cpu: (await t.cpuSeconds()) - before };
}

export function scenarios(limits: ScenarioLimits): Scenario[] {
  return [
    {
      id: 'a',
      title: 'download large file, curl, PROT P',
      unit: 'MB/s',
      cpuUnit: 's/GB',
      higherIsBetter: true,
      prepare: (t, f) => linkInto(f.big, join(t.dataDir, 'big.bin')),
      async run(t, f) {
        const { result: r, cpu } = await withServerCpu(t, () =>
          runCurl(['--ssl-reqd', '-k', '-o', '/dev/null', '-w', '%{size_download} %{speed_download}', urlOf(t, 'big.bin')], {
            timeoutMs: limits.bigTransferTimeoutMs,
          }),
        );
        const [size, speed] = r.stdout.trim().split(' ').map(Number);
        if (r.code !== 0 || size !== f.bigBytes) throw new Error(`curl download: code ${r.code}, ${size} bytes: ${r.stderr.trim()}`);
        return { value: speed! / MB, cpu: cpu / (f.bigBytes / GB) };
      },
    },
    {
      id: 'b',
      title: 'upload large file, curl -T, PROT P',
      unit: 'MB/s',
      cpuUnit: 's/GB',
      higherIsBetter: true,
      async run(t, f, round) {
        const name = `up-${round}.bin`;
        // curl 7.88 (Debian 12) can lose the end of an FTPS upload over TLS 1.3: it never reads the data connection,
        // so the server's NewSessionTicket stays unread and closing the socket sends a TCP RST that discards data
        // still in the server's receive buffer. TLS 1.2 avoids that race for both servers alike.
        const { result: r, cpu } = await withServerCpu(t, () =>
          runCurl(['--ssl-reqd', '-k', ...CURL_UPLOAD_TLS_ARGS, '-T', f.big, '-w', '%{size_upload} %{speed_upload}', urlOf(t, name)], {
            timeoutMs: limits.bigTransferTimeoutMs,
          }),
        );
        const [size, speed] = r.stdout.trim().split(' ').map(Number);
        const onDisk = await stat(join(t.dataDir, name)).then((s) => s.size, () => -1);
        await rm(join(t.dataDir, name), { force: true });
        if (r.code !== 0 || size !== f.bigBytes || onDisk !== f.bigBytes) {
          throw new Error(`curl upload: code ${r.code}, sent ${size}, stored ${onDisk}: ${r.stderr.trim()}`);
        }
        return { value: speed! / MB, cpu: cpu / (f.bigBytes / GB) };
      },
    },
    ...(['default', '1.2'] as const).flatMap((tls): Scenario[] => {
      const tag = tls === 'default' ? 'c' : 'c12';
      const how = tls === 'default' ? 'lftp defaults (TLS 1.3)' : 'lftp, TLS 1.2';
      return [
        {
          id: `${tag}-up`,
          title: `upload small files over one session, ${how}`,
          unit: 'files/s',
          cpuUnit: 'ms/file',
          higherIsBetter: true,
          run: (t, f, round) => smallFilesHalf(`${tag}/${t.name}/${round}`, 'up', () => lftpSmallFiles(t, f, round, tls, limits)),
        },
        {
          id: `${tag}-down`,
          title: `download small files over one session, ${how}`,
          unit: 'files/s',
          cpuUnit: 'ms/file',
          higherIsBetter: true,
          run: (t, f, round) => smallFilesHalf(`${tag}/${t.name}/${round}`, 'down', () => lftpSmallFiles(t, f, round, tls, limits)),
        },
      ];
    }),
    {
      id: 'f-up',
      title: 'upload small files over one session, Python ftplib (session reuse)',
      unit: 'files/s',
      cpuUnit: 'ms/file',
      higherIsBetter: true,
      run: (t, f, round) => smallFilesHalf(`f/${t.name}/${round}`, 'up', () => ftplibSmallFiles(t, f, round, limits)),
    },
    {
      id: 'f-down',
      title: 'download small files over one session, Python ftplib',
      unit: 'files/s',
      cpuUnit: 'ms/file',
      higherIsBetter: true,
      run: (t, f, round) => smallFilesHalf(`f/${t.name}/${round}`, 'down', () => ftplibSmallFiles(t, f, round, limits)),
    },
    {
      id: 'd',
      title: `memory per idle logged-in TLS session (${limits.sessions} sessions)`,
      unit: 'KiB/session',
      cpuUnit: 'ms/session',
      higherIsBetter: false,
      run: (t) => idleMemory(t, limits),
    },
    {
      id: 'e',
      title: `${limits.sessions} concurrent sessions at once: login, LIST, get 1 MiB (wall)`,
      unit: 's',
      cpuUnit: 'ms/session',
      higherIsBetter: false,
      prepare: (t, f) => linkInto(f.medium, join(t.dataDir, 'medium.bin')),
      run: (t, f) => concurrentSessions(t, f, limits, 0),
    },
    {
      id: 'e-ramp',
      title: `the same, sessions started ${limits.rampSpacingMs} ms apart (wall)`,
      unit: 's',
      cpuUnit: 'ms/session',
      higherIsBetter: false,
      prepare: (t, f) => linkInto(f.medium, join(t.dataDir, 'medium.bin')),
      run: (t, f) => concurrentSessions(t, f, limits, limits.rampSpacingMs),
    },
  ];
}

function urlOf(t: BenchTarget, path: string): string {
  return `ftp://${encodeURIComponent(t.user)}:${encodeURIComponent(t.password)}@127.0.0.1:${t.port}/${path}`;
}

async function linkInto(src: string, dest: string): Promise<void> {
  await rm(dest, { force: true });
  await link(src, dest);
}

// A small-file client run yields two measurements (its upload and its download half); the upload row runs it and
// keeps the download half for the download row, which always comes next in the same round.
const pendingHalves = new Map<string, Measurement>();

async function smallFilesHalf(key: string, half: 'up' | 'down', runBoth: () => Promise<{ up: Measurement; down: Measurement }>): Promise<Measurement> {
  if (half === 'down') {
    const down = pendingHalves.get(key);
    if (down === undefined) throw new Error('small-file download measured together with the upload');
    pendingHalves.delete(key);
    return down;
  }
  const both = await runBoth();
  pendingHalves.set(key, both.down);
  return both.up;
}

/** Three CPU marks taken by the client around its two halves: files/s and server ms per file for each. */
function halvesFromMarks(marks: readonly CpuMark[], count: number): { up: Measurement; down: Measurement } {
  const half = (a: CpuMark, b: CpuMark): Measurement => ({ value: count / (Number(b.ns - a.ns) / 1e9), cpu: ((b.cpu - a.cpu) * 1000) / count });
  return { up: half(marks[0]!, marks[1]!), down: half(marks[1]!, marks[2]!) };
}

/**
 * Small files up and down with lftp over TLS 1.2, `passes` times, unmeasured. A server runs for days; a JIT-compiled
 * one (ftpsd, node-floor) spends its first thousand or so transfers compiling its per-transfer path (measured: 5.6
 * ms of CPU per upload in the first 300, 3.1-3.4 after 1,500), which C servers never pay. Warming every server the
 * same way before the first measured round makes the rows steady-state figures.
 */
export async function warmUp(t: BenchTarget, f: BenchFiles, passes: number, limits: ScenarioLimits): Promise<void> {
  for (let pass = 1; pass <= passes; pass++) await lftpSmallFiles(t, f, -pass, '1.2', limits);
}

async function lftpSmallFiles(t: BenchTarget, f: BenchFiles, round: number, tls: 'default' | '1.2', limits: ScenarioLimits): Promise<{ up: Measurement; down: Measurement }> {
  const remote = `small-${tls}-${round}`;
  const localOut = join(f.dir, `small-back-${t.name}-${tls}-${round}`);
  await mkdir(localOut);
  try {
    // The server's CPU and the wall clock, read by a shell between the halves of one lftp session.
    const mark = `!sh ${TREE_CPU_SCRIPT} ${t.pid}`;
    const script = [`mkdir ${remote}`, mark, `mput -O ${remote} ${f.smallDir}/*`, mark, `mget -O ${localOut} ${remote}/*`, mark].join('\n');
    // GnuTLS priority string: the same client, TLS 1.3 left out.
    const settings = tls === '1.2' ? ['set ssl:priority NORMAL:-VERS-TLS1.3'] : [];
    const r = await runLftp(script, { port: t.port, user: t.user, password: t.password, settings, timeoutMs: limits.smallFilesTimeoutMs });
    const marks = parseCpuMarks(r.stdout);
    const back = await readdir(localOut);
    if (r.code !== 0 || marks.length !== 3 || back.length !== f.smallCount) {
      throw new Error(`lftp small files: code ${r.code}, ${back.length}/${f.smallCount} files back: ${r.stderr.trim().slice(-500)}`);
    }
    return halvesFromMarks(marks, f.smallCount);
  } finally {
    await rm(localOut, { recursive: true, force: true });
    await rm(join(t.dataDir, remote), { recursive: true, force: true });
  }
}

const FTPLIB_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'ftplib_small.py');

async function ftplibSmallFiles(t: BenchTarget, f: BenchFiles, round: number, limits: ScenarioLimits): Promise<{ up: Measurement; down: Measurement }> {
  const remote = `ftplib-${round}`;
  const localOut = join(f.dir, `ftplib-back-${t.name}-${round}`);
  await mkdir(localOut);
  try {
    const r = await runProcess('python3', [FTPLIB_SCRIPT, String(t.port), remote, f.smallDir, localOut, String(t.pid)], {
      env: { FTP_USER: t.user, FTP_PASSWORD: t.password },
      timeoutMs: limits.smallFilesTimeoutMs,
    });
    const marks = parseCpuMarks(r.stdout);
    const back = await readdir(localOut);
    if (r.code !== 0 || marks.length !== 3 || back.length !== f.smallCount) {
      throw new Error(`ftplib small files: code ${r.code}, ${back.length}/${f.smallCount} files back: ${r.stderr.trim().slice(-500)}`);
    }
    return halvesFromMarks(marks, f.smallCount);
  } finally {
    await rm(localOut, { recursive: true, force: true });
    await rm(join(t.dataDir, remote), { recursive: true, force: true });
  }
}

async function idleMemory(t: BenchTarget, limits: ScenarioLimits): Promise<Measurement> {
  // A first batch opened and closed before the baseline: what the earlier scenarios left to collect, and what only the
  // first sessions allocate (code, caches), would otherwise land in the difference, sometimes making it negative.
  const warm = await openIdleSessions(t, limits);
  for (const s of warm) s.close();
  await sleep(limits.settleMs);
  const before = await t.memoryBytes();
  const { result: sessions, cpu } = await withServerCpu(t, () => openIdleSessions(t, limits));
  try {
    await sleep(limits.settleMs);
    const after = await t.memoryBytes();
    return { value: (after - before) / limits.sessions / 1024, cpu: (cpu * 1000) / limits.sessions };
  } finally {
    for (const s of sessions) s.close();
    await sleep(limits.settleMs);
  }
}

async function openIdleSessions(t: BenchTarget, limits: ScenarioLimits): Promise<IdleSession[]> {
  const openConcurrency = 10;
  const sessions: IdleSession[] = [];
  try {
    await mapLimit(Array.from({ length: limits.sessions }, (_, i) => i), openConcurrency, async () => {
      sessions.push(await openIdleSession(t.port, t.user, t.password, limits.sessionTimeoutMs));
    });
  } catch (err) {
    for (const s of sessions) s.close();
    throw err;
  }
  return sessions;
}

class CountingSink extends Writable {
  bytes = 0;
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.bytes += chunk.length;
    cb();
  }
}

async function concurrentSessions(t: BenchTarget, f: BenchFiles, limits: ScenarioLimits, spacingMs: number): Promise<Measurement> {
  const failures: string[] = [];
  const cpuBefore = await t.cpuSeconds();
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: limits.sessions }, async (_, i) => {
      if (spacingMs > 0) await sleep(i * spacingMs);
      const client = new Client(limits.sessionTimeoutMs);
      const sink = new CountingSink();
      try {
        await client.access({ host: '127.0.0.1', port: t.port, user: t.user, password: t.password, secure: true, secureOptions: { rejectUnauthorized: false } });
        const list = await client.list();
        if (!list.some((e) => e.name === 'medium.bin')) throw new Error('medium.bin not listed');
        await client.downloadTo(sink, 'medium.bin');
        if (sink.bytes !== f.mediumBytes) throw new Error(`got ${sink.bytes} bytes`);
      } catch (err) {
        failures.push(`session ${i}: ${(err as Error).message}`);
      } finally {
        client.close();
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = (await t.cpuSeconds()) - cpuBefore;
  if (failures.length > 0) throw new Error(`${failures.length} of ${limits.sessions} sessions failed; first: ${failures[0]}`);
  return { value: seconds, cpu: (cpu * 1000) / limits.sessions };
}
