import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import argon2 from 'argon2';
import { pino } from 'pino';
import { HASH_PARAMS } from '../src/auth/password-hasher.js';
import { writeUsersFile } from '../src/auth/users-file.js';
import { validate } from '../src/config/load.js';
import { startServer } from '../src/server.js';
import { ControlClient } from '../test/helpers/control-client.js';
import { median, sleep } from './measure.js';

// Login storm: does a burst of wrong-password logins (argon2id on libuv's threadpool, shared with file I/O) stall
// the other sessions? The server runs in a child process so that its event loop is measured alone
// (perf_hooks.monitorEventLoopDelay); this process drives a busy session doing small control commands, a second
// session downloading a file in a loop, and then 100 concurrent wrong-password logins from 100 loopback addresses.
// Meanwhile a partner who logged in from its address before logs in again and again (USER, PASS, REIN on one TLS
// session); the time from PASS to its reply is the partner's login latency during the storm.
//
//   node --import tsx bench/login-storm.ts [--attempts 100] [--tries 1] [--baseline-ms 3000] [--download 0]
//                                          [--hash-concurrency N]
//
// --attempts is the number of storm addresses, --tries the wrong passwords each sends on its connection (450 and 3
// reproduce a storm that stays under the default ban threshold). Prints command latency (median, p99), event-loop
// delay and download throughput, before and during the storm, and the partner's login latency and replies.

const ARGS = new Map<string, string>();
for (let i = 2; i < process.argv.length - 1; i++) if (process.argv[i]!.startsWith('--')) ARGS.set(process.argv[i]!.slice(2), process.argv[i + 1]!);
const ATTEMPTS = Number(ARGS.get('attempts') ?? 100);
const TRIES = Number(ARGS.get('tries') ?? 1);
const BASELINE_MS = Number(ARGS.get('baseline-ms') ?? 3_000);
/** --download 0 leaves the download session out, to see the storm's own cost. */
const WITH_DOWNLOAD = ARGS.get('download') !== '0';
/** limits.passwordHashConcurrency for the server; default: the configured default. */
const HASH_CONCURRENCY = ARGS.has('hash-concurrency') ? Number(ARGS.get('hash-concurrency')) : undefined;
/** Every client operation gives up after this long; the whole run after RUN_LIMIT_MS. */
const OP_TIMEOUT_MS = 30_000;
const RUN_LIMIT_MS = 120_000;
const FILE_BYTES = 8 * 1024 * 1024;
const USER = { name: 'busy', password: 'busy-password' };

/** monitorEventLoopDelay samples with a timer of this period; each sample is the period plus the delay, so the period
 *  is subtracted from what is reported. */
const LOOP_RESOLUTION_MS = 10;

type ToChild = { type: 'reset' } | { type: 'report' } | { type: 'stop' };
type FromChild = { type: 'ready'; port: number } | { type: 'report'; loop: LoopStats };
interface LoopStats {
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Server side (child process)

async function serverChild(dir: string): Promise<void> {
  const config = validate(
    {
      listen: { host: '127.0.0.1', port: 0 },
      pasv: { minPort: 48_000, maxPort: 48_200 },
      users: { file: join(dir, 'users.yaml') },
      tls: { selfSignedDir: join(dir, 'certs') },
      log: { level: 'warn' },
      admin: { enabled: false },
      // Each attacker address tries once: the storm is many addresses, as a botnet's is, so no ban ends it early.
      limits: { maxSessions: 1_000, maxUnauthenticatedSessions: 1_000, ...(HASH_CONCURRENCY === undefined ? {} : { passwordHashConcurrency: HASH_CONCURRENCY }) },
    },
    'login storm config',
  );
  const log = pino({ level: 'warn' }, pino.destination({ dest: join(dir, 'server.log'), sync: false }));
  const server = await startServer({ config, baseDir: dir, log });
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const send = (m: FromChild) => process.send?.(m);
  process.on('message', (m: ToChild) => {
    if (m.type === 'reset') h.reset();
    else if (m.type === 'report') {
      const delay = (ns: number) => Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS);
      send({ type: 'report', loop: { meanMs: delay(h.mean), p50Ms: delay(h.percentile(50)), p99Ms: delay(h.percentile(99)), maxMs: delay(h.max) } });
    }
    else void server.close(1_000).then(() => process.exit(0));
  });
  send({ type: 'ready', port: server.port });
}

// ---------------------------------------------------------------------------------------------------------------
// Driver

class Child {
  readonly #proc: ChildProcess;
  readonly #waiters: Array<(m: FromChild) => void> = [];
  constructor(proc: ChildProcess) {
    this.#proc = proc;
    proc.on('message', (m: FromChild) => this.#waiters.shift()?.(m));
  }
  next(): Promise<FromChild> {
    return withTimeout(new Promise((resolve) => this.#waiters.push(resolve)), OP_TIMEOUT_MS, 'server child');
  }
  send(m: ToChild): void {
    this.#proc.send(m);
  }
  async loop(): Promise<LoopStats> {
    this.send({ type: 'report' });
    const m = await this.next();
    if (m.type !== 'report') throw new Error('unexpected message from the server child');
    return m.loop;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

async function login(port: number, user: string, password: string, localAddress?: string): Promise<{ c: ControlClient; code: number }> {
  const c = await ControlClient.connect(port, '127.0.0.1', localAddress);
  const hello = await c.read(OP_TIMEOUT_MS);
  if (hello?.code !== 220) return { c, code: hello?.code ?? 0 };
  const auth = await c.authTls();
  if (auth.code !== 234) return { c, code: auth.code };
  await c.send('PBSZ 0');
  await c.send('PROT P');
  await c.send(`USER ${user}`);
  // PASS waits for a turn in the server's argon2 queue: allow it the whole operation time, not the default read's.
  c.write(`PASS ${password}\r\n`);
  const r = await c.read(OP_TIMEOUT_MS);
  return { c, code: r?.code ?? 0 };
}

/** One storm address: a TLS connection sending TRIES wrong passwords; the reply codes it got. */
async function stormer(port: number, ip: string): Promise<number[]> {
  const c = await ControlClient.connect(port, '127.0.0.1', ip);
  const codes: number[] = [];
  try {
    if ((await c.read(OP_TIMEOUT_MS))?.code !== 220 || (await c.authTls()).code !== 234) return [0];
    for (let i = 0; i < TRIES && !c.closed; i++) {
      await c.send(`USER ${USER.name}`);
      c.write('PASS wrong-password\r\n');
      codes.push((await c.read(OP_TIMEOUT_MS))?.code ?? 0);
    }
    return codes;
  } finally {
    c.close();
  }
}

/** The partner: USER, PASS, REIN in a loop on one TLS session; each PASS latency and reply is recorded. */
async function partnerLogins(c: ControlClient, out: { ms: number[]; codes: number[] }, stop: () => boolean): Promise<void> {
  while (!stop()) {
    await c.send(`USER ${USER.name}`);
    const started = process.hrtime.bigint();
    c.write(`PASS ${USER.password}\r\n`);
    const r = await c.read(OP_TIMEOUT_MS);
    out.ms.push(Number(process.hrtime.bigint() - started) / 1e6);
    out.codes.push(r?.code ?? 0);
    if (r?.code === 230) await c.send('REIN');
    await sleep(100);
  }
}

/** Small control commands back to back; every latency is recorded in the current bucket. */
async function busyCommands(c: ControlClient, bucket: () => number[], stop: () => boolean): Promise<void> {
  const cycle = ['NOOP', 'PWD', 'SIZE big.bin'];
  for (let i = 0; !stop(); i++) {
    const started = process.hrtime.bigint();
    const r = await c.send(cycle[i % cycle.length]!);
    if (r.code >= 400) throw new Error(`busy session: ${r.text}`);
    bucket().push(Number(process.hrtime.bigint() - started) / 1e6);
  }
}

/** Downloads the file again and again; bytes are counted in the current bucket. */
async function busyDownloads(c: ControlClient, bytes: (n: number) => void, stop: () => boolean): Promise<void> {
  while (!stop()) {
    const port = await c.epsv();
    const data = c.dataConnect(port);
    data.socket.on('data', (chunk: Buffer) => bytes(chunk.length));
    const first = await c.send('RETR big.bin');
    if (first.code !== 150) throw new Error(`download: ${first.text}`);
    const final = await c.read(OP_TIMEOUT_MS);
    await data.received;
    if (final?.code !== 226) throw new Error(`download: ${final?.text}`);
  }
}

async function driver(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ftpsd-login-storm-'));
  const home = join(dir, 'homes', USER.name);
  await mkdir(home, { recursive: true });
  await writeFile(join(home, 'big.bin'), randomBytes(FILE_BYTES));
  await writeUsersFile(join(dir, 'users.yaml'), {
    users: { [USER.name]: { password: await argon2.hash(USER.password, HASH_PARAMS), home, permissions: ['list', 'download'], allowedNetworks: [], clientCertificates: [], disabled: false } },
  });
  const proc = fork(fileURLToPath(import.meta.url), ['--child', dir, ...process.argv.slice(2)], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  const child = new Child(proc);
  const killer = setTimeout(() => {
    console.error('login storm: run limit reached');
    proc.kill('SIGKILL');
    process.exit(1);
  }, RUN_LIMIT_MS);
  try {
    const ready = await child.next();
    if (ready.type !== 'ready') throw new Error('server child did not start');
    const port = ready.port;

    const commands = await login(port, USER.name, USER.password);
    const downloads = await login(port, USER.name, USER.password);
    if (commands.code !== 230 || downloads.code !== 230) throw new Error('busy sessions could not log in');

    let phase: 'baseline' | 'storm' = 'baseline';
    let stopped = false;
    const latencies = { baseline: [] as number[], storm: [] as number[] };
    const bytes = { baseline: 0, storm: 0 };
    const busy = Promise.all([
      busyCommands(commands.c, () => latencies[phase], () => stopped),
      WITH_DOWNLOAD ? busyDownloads(downloads.c, (n) => (bytes[phase] += n), () => stopped) : Promise.resolve(),
    ]);

    await sleep(500); // let both loops reach their steady state
    latencies.baseline.length = 0;
    bytes.baseline = 0;
    child.send({ type: 'reset' });
    const baseStart = Date.now();
    await sleep(BASELINE_MS);
    const baseMs = Date.now() - baseStart;
    const baseLoop = await child.loop();

    // The partner has logged in from 127.0.0.1 before (the busy sessions above): its address has a history.
    const partner = await ControlClient.connect(port);
    if ((await partner.read())?.code !== 220 || (await partner.authTls()).code !== 234) throw new Error('partner could not connect');
    const partnerStats = { ms: [] as number[], codes: [] as number[] };
    let stormOver = false;

    phase = 'storm';
    child.send({ type: 'reset' });
    const stormStart = Date.now();
    const partnerLoop = partnerLogins(partner, partnerStats, () => stormOver);
    const outcomes = (
      await Promise.all(
        Array.from({ length: ATTEMPTS }, async (_, i) => {
          // 127.0.1.1 ... : one connection per address, like a botnet; loopback routes all of 127/8.
          const ip = `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
          try {
            return await withTimeout(stormer(port, ip), OP_TIMEOUT_MS * TRIES, 'storm login');
          } catch {
            return [-1];
          }
        }),
      )
    ).flat();
    const stormMs = Date.now() - stormStart;
    stormOver = true;
    await withTimeout(partnerLoop, OP_TIMEOUT_MS, 'partner logins');
    partner.close();
    const stormLoop = await child.loop();
    stopped = true;
    await withTimeout(busy, OP_TIMEOUT_MS, 'busy sessions');
    commands.c.close();
    downloads.c.close();

    const refused = outcomes.filter((c) => c === 530).length;
    const others = new Map<number, number>();
    for (const c of outcomes) if (c !== 530) others.set(c, (others.get(c) ?? 0) + 1);
    const fmt = (n: number) => n.toFixed(2);
    const row = (name: string, lat: number[], loop: LoopStats, b: number, ms: number) =>
      `${name.padEnd(9)} commands ${String(lat.length).padStart(5)}  latency median ${fmt(median(lat)).padStart(7)} ms  p99 ${fmt(percentile(lat, 99)).padStart(7)} ms  max ${fmt(Math.max(...lat)).padStart(7)} ms | ` +
      `event-loop delay mean ${fmt(loop.meanMs)} ms  p99 ${fmt(loop.p99Ms)} ms  max ${fmt(loop.maxMs)} ms | download ${WITH_DOWNLOAD ? `${fmt(b / 1e6 / (ms / 1000))} MB/s` : 'off'}`;
    console.log(`login storm: ${ATTEMPTS} addresses x ${TRIES} wrong passwords, ${refused} answered 530${[...others].map(([c, n]) => `, ${n} ${c === -1 ? 'failed or timed out' : `answered ${c}`}`).join('')}; storm lasted ${stormMs} ms`);
    console.log(row('baseline', latencies.baseline, baseLoop, bytes.baseline, baseMs));
    console.log(row('storm', latencies.storm, stormLoop, bytes.storm, stormMs));
    const p = partnerStats;
    const partnerOthers = p.codes.filter((c) => c !== 230);
    console.log(
      `partner   logins ${String(p.ms.length).padStart(5)}  PASS latency median ${fmt(median(p.ms)).padStart(7)} ms  p99 ${fmt(percentile(p.ms, 99)).padStart(7)} ms  max ${fmt(Math.max(...p.ms)).padStart(7)} ms | ` +
        `${p.codes.length - partnerOthers.length} x 230${partnerOthers.length > 0 ? `, others: ${partnerOthers.join(' ')}` : ''}`,
    );
  } finally {
    clearTimeout(killer);
    child.send({ type: 'stop' });
    await withTimeout(new Promise((r) => proc.once('exit', r)), 5_000, 'server child exit').catch(() => proc.kill('SIGKILL'));
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') await serverChild(process.argv[3]!);
else await driver();
