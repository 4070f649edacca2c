import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { VSFTPD_PASV_PORTS, freePort, freePortRange, startVsftpd } from '../test/helpers/vsftpd.js';
import { processRssBytes, treeCpuSeconds, treePssBytes } from './measure.js';
import { startPureFtpd, waitForGreeting } from './pureftpd.js';

// The servers under comparison, behind one shape so every scenario runs the same code against each.

/**
 * ftpsd-baseline: another build of ftpsd (--baseline DIR), measured in the same run for a before/after comparison.
 * node-floor: bench/ftp-floor.ts, the least a Node process does for the same durable, bound, audited transfer; a
 * reference for what is left to take out of ftpsd, not a peer.
 */
export type TargetName = 'ftpsd' | 'ftpsd-baseline' | 'vsftpd' | 'pure-ftpd' | 'node-floor';
export const TARGET_NAMES: readonly TargetName[] = ['ftpsd', 'ftpsd-baseline', 'vsftpd', 'pure-ftpd', 'node-floor'];
/** The servers ftpsd is compared with; the others are ftpsd itself and yardsticks. */
export function isPeer(name: string): boolean {
  return name === 'vsftpd' || name === 'pure-ftpd';
}

export interface BenchTarget {
  name: TargetName;
  port: number;
  user: string;
  password: string;
  /** The user's FTP root on disk. */
  dataDir: string;
  /** Memory the server holds now: RSS of ftpsd's one process, PSS summed over vsftpd's process tree. */
  memoryBytes(): Promise<number>;
  /** What memoryBytes measures, for the report. */
  memoryKind: 'RSS' | 'PSS';
  /** The server's top process; its tree is what treeCpuSeconds reads. */
  pid: number;
  /** CPU seconds the server's whole process tree has used so far (see bench/tree-cpu.sh). */
  cpuSeconds(): Promise<number>;
  stop(): Promise<void>;
}

/** Sessions the benchmark opens at once; the servers' per-IP and per-user caps are raised above it. */
export const BENCH_MAX_SESSIONS = 1_000;
/** The flags `npm start` gives node (package.json), so the benchmark measures the server as it is run. */
const FTPSD_NODE_FLAGS = ['--max-semi-space-size=4'];
const START_TIMEOUT_MS = 20_000;
const CLI_TIMEOUT_MS = 30_000;

export async function startVsftpdTarget(): Promise<BenchTarget> {
  const v = await startVsftpd();
  return {
    name: 'vsftpd',
    port: v.port,
    user: v.user,
    password: v.password,
    dataDir: v.dataDir,
    memoryKind: 'PSS',
    memoryBytes: () => treePssBytes(v.pid),
    pid: v.pid,
    cpuSeconds: () => treeCpuSeconds(v.pid),
    stop: () => v.stop(),
  };
}

export async function startPureFtpdTarget(repoDir: string): Promise<BenchTarget> {
  const p = await startPureFtpd(repoDir, BENCH_MAX_SESSIONS);
  return {
    name: 'pure-ftpd',
    port: p.port,
    user: p.user,
    password: p.password,
    dataDir: p.dataDir,
    memoryKind: 'PSS',
    memoryBytes: () => treePssBytes(p.pid),
    pid: p.pid,
    cpuSeconds: () => treeCpuSeconds(p.pid),
    stop: () => p.stop(),
  };
}

/** bench/ftp-floor.ts with the flags ftpsd runs with; it takes any login. */
export async function startNodeFloorTarget(repoDir: string): Promise<BenchTarget> {
  const root = await mkdtemp(join(tmpdir(), 'ftp-floor-'));
  const dataDir = join(root, 'home');
  await mkdir(dataDir);
  const port = await freePort();
  const script = resolve(repoDir, 'bench/ftp-floor.ts');
  const child = spawn(process.execPath, [...FTPSD_NODE_FLAGS, '--import', 'tsx', script, '--port', String(port), '--root', dataDir, '--audit', join(root, 'audit.jsonl')], {
    cwd: repoDir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  try {
    await awaitGreeting('node-floor', child, port);
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw err;
  }
  return nodeProcessTarget('node-floor', child, root, { port, user: 'bench', password: 'any', dataDir });
}

/** Waits for the 220 of a server just spawned; else kills it and throws with the end of its stderr (returned for later). */
async function awaitGreeting(name: string, child: ChildProcess, port: number): Promise<() => string> {
  const stderr: Buffer[] = [];
  child.stderr?.on('data', (b: Buffer) => stderr.push(b));
  const tail = () => Buffer.concat(stderr).toString('utf8').slice(-2000);
  try {
    await waitForGreeting(port, child, START_TIMEOUT_MS, 100);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${name} did not start: ${(err as Error).message}\n${tail()}`);
  }
  return tail;
}

/** A server run as one node process of ours, measured by its RSS; stopping it removes its temporary directory. */
function nodeProcessTarget(name: TargetName, child: ChildProcess, root: string, where: { port: number; user: string; password: string; dataDir: string }): BenchTarget & { stopped(): boolean } {
  const pid = child.pid!;
  let stopped = false;
  return {
    name,
    ...where,
    memoryKind: 'RSS',
    memoryBytes: () => processRssBytes(pid),
    pid,
    cpuSeconds: () => treeCpuSeconds(pid),
    stopped: () => stopped,
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopChild(child);
      await rm(root, { recursive: true, force: true });
    },
  };
}

/**
 * Starts this checkout's server (bin/ftpsd.js, built into dist/) with a config of its own in a temporary directory:
 * a self-signed certificate generated at first start, one user created with the CLI, limits raised so that the
 * benchmark's 100 concurrent sessions from 127.0.0.1 are not refused. Everything else is as shipped: the log at its
 * default level (to /dev/null), the hash-chained audit file on, fsync on commit, data connections bound to their
 * session, SHA-256 of every upload. `nodeFlags` go to node
 * after the shipped ones (--cpu-prof for a profile).
 */
/**
 * FTPSD_BENCH_CONFIG: a JSON object of config sections whose keys replace or extend the benchmark's own (for
 * experiments such as `{"storage":{"fsyncOnCommit":false}}`: what one feature costs per file). Unset for every
 * figure in bench/README.md unless it says otherwise.
 */
function withExtraConfig(config: Record<string, Record<string, unknown>>): Record<string, Record<string, unknown>> {
  const text = process.env.FTPSD_BENCH_CONFIG;
  if (text === undefined || text === '') return config;
  const extra = JSON.parse(text) as Record<string, Record<string, unknown>>;
  const merged = { ...config };
  for (const [section, values] of Object.entries(extra)) merged[section] = { ...merged[section], ...values };
  return merged;
}

export async function startFtpsdTarget(repoDir: string, nodeFlags: readonly string[] = [], name: 'ftpsd' | 'ftpsd-baseline' = 'ftpsd'): Promise<BenchTarget> {
  const root = await mkdtemp(join(tmpdir(), 'ftpsd-bench-'));
  const dataDir = join(root, 'home');
  await mkdir(dataDir);
  const password = randomBytes(12).toString('base64url');
  const user = 'bench';
  const port = await freePort();
  const pasvMinPort = await freePortRange(VSFTPD_PASV_PORTS);
  const configFile = join(root, 'ftpsd.yaml');
  await writeFile(
    configFile,
    JSON.stringify(
      withExtraConfig({
        listen: { host: '127.0.0.1', port },
        pasv: { minPort: pasvMinPort, maxPort: pasvMinPort + VSFTPD_PASV_PORTS - 1 },
        tls: { selfSignedDir: join(root, 'certs') },
        users: { file: join(root, 'users.yaml'), demoHome: join(root, 'demo') },
        // Absolute: the CLI that adds the user and the server run from different directories.
        store: { path: join(root, 'ftpsd.db') },
        log: { auditFile: join(root, 'audit', 'audit.jsonl') },
        limits: { maxSessions: BENCH_MAX_SESSIONS, maxSessionsPerIp: BENCH_MAX_SESSIONS, maxLoginsPerUser: BENCH_MAX_SESSIONS, passwordHashQueueMax: BENCH_MAX_SESSIONS },
        defender: { enabled: false },
        // The FTPS server alone is measured; the admin listener would also take a fixed port.
        admin: { enabled: false },
      }),
      null,
      2,
    ) + '\n', // JSON is YAML
  );
  const bin = resolve(repoDir, 'bin/ftpsd.js');
  try {
    await runCli(
      process.execPath,
      [bin, 'user', 'add', user, '--home', dataDir, '--perms', 'list,download,upload,overwrite,delete,rename,mkdir', '--config', configFile],
      `${password}\n`,
      repoDir,
    );
    // FTPSD_BENCH_STDOUT: a file for the server's JSON log (and what V8 flags such as --trace-gc print); unset: dropped.
    const logFile = process.env.FTPSD_BENCH_STDOUT;
    const out = logFile === undefined || logFile === '' ? 'ignore' : openSync(logFile, 'a');
    const child = spawn(process.execPath, [...FTPSD_NODE_FLAGS, ...nodeFlags, bin, 'serve', '--config', configFile], { cwd: root, stdio: ['ignore', out, 'pipe'] });
    if (typeof out === 'number') closeSync(out);
    const stderrTail = await awaitGreeting(name, child, port);
    const target = nodeProcessTarget(name, child, root, { port, user, password, dataDir });
    // A server that dies under the benchmark fails every later round; say why at once.
    child.once('exit', (code, signal) => {
      if (!target.stopped()) console.error(`${name} exited (${code ?? signal}): ${stderrTail()}`);
    });
    return target;
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw err;
  }
}

function runCli(cmd: string, args: readonly string[], input: string, cwd: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => out.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), CLI_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise();
      else reject(new Error(`${args.slice(1, 3).join(' ')} failed (${code}): ${Buffer.concat(out).toString('utf8')}`));
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}


function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  // Past the server's shutdown grace there is nothing left worth waiting for in a benchmark.
  const graceMs = 5_000;
  return new Promise((resolvePromise) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(kill);
      resolvePromise();
    });
    child.kill('SIGTERM');
  });
}
