import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { applyPartnerFile } from '../../src/partners/apply.js';
import { parsePartnerFile } from '../../src/partners/partner-file.js';
import { openStore, type Store } from '../../src/store/open-store.js';
import { setPasswordHash } from '../../src/store/partner-repo.js';
import { isS3Path } from '../../src/storage/s3-place.js';
import { runProcess, type RunResult } from './clients.js';
import { startPostgres, type TestPostgres } from './postgres.js';
import { hashPassword, passiveRange } from './server.js';

// Several ftpsd nodes on loopback behind a real HAProxy (Debian's, `mode tcp`, `send-proxy-v2`), sharing one
// PostgreSQL store and one storage: the balancer on 127.0.0.1, the nodes on 127.0.0.2, .3, .4 (each its own process,
// so a test can SIGKILL one), clients on 127.0.0.5 so every address in the picture is distinct.
//
// Two layouts of the data connections:
// - 'direct': each node advertises its own address in 227 replies (pasv.externalAddress) and clients connect to it;
//   EPSV is off (pasv.epsv), since it would send clients to the balancer's address.
// - 'balanced': the balancer forwards each node's own passive range to that node with send-proxy-v2
//   (proxyProtocol.passive); nodes advertise the balancer's address.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'ftpsd.js');
export const BALANCER_IP = '127.0.0.1';
export const CLIENT_IP = '127.0.0.5';
const NODE_IPS = ['127.0.0.2', '127.0.0.3', '127.0.0.4'] as const;

export type PassiveLayout = 'direct' | 'balanced';

/**
 * Where the nodes keep files. `root` is a folder every node sees (the partners file puts homes and folders under it);
 * `config` is merged into every node's configuration (an object storage backend's settings, for instance).
 */
export interface ClusterStorage {
  root: string;
  config?: Record<string, unknown>;
}

export interface ClusterOptions {
  layout: PassiveLayout;
  nodes?: number;
  /** Users, groups and folders as a partners file; `{root}` stands for the storage root. */
  partners: string;
  /** Passwords of the users of the partners file. */
  passwords: Record<string, string>;
  /** Storage shared by the nodes; default: a local folder in the topology's directory. */
  storage?: (dir: string) => ClusterStorage;
  /** Merged into every node's configuration (one level deep). */
  config?: Record<string, unknown>;
  /** Merged into one node's configuration after everything else (what differs per node). */
  nodeConfig?: (id: string, index: number) => Record<string, unknown>;
  /** A PostgreSQL server to reuse; by default one is started and stopped with the topology. */
  postgres?: TestPostgres;
}

export interface ClusterNode {
  readonly id: string;
  readonly ip: string;
  readonly pasv: { minPort: number; maxPort: number };
  readonly configFile: string;
  readonly proc: ChildProcess;
  /** Parsed JSON log lines of the current process (a restart starts a new list). */
  logs(): Array<Record<string, unknown>>;
  waitForLog(match: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGKILL, at once; resolves when the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM (graceful: running transfers finish); resolves when the process is gone. */
  stop(): Promise<void>;
  /** Starts the node again (same configuration); resolves once it listens. */
  start(): Promise<void>;
  readonly running: boolean;
}

export interface ClusterTopology {
  readonly dir: string;
  readonly storage: ClusterStorage;
  /** The balancer's control port on 127.0.0.1. */
  readonly port: number;
  /** The nodes' control port (the same on each node's address). */
  readonly nodePort: number;
  readonly nodes: ClusterNode[];
  readonly storeUrl: string;
  readonly layout: PassiveLayout;
  /** The shared store, opened in the test process. */
  readonly store: Store;
  /** Runs `ftpsd ARGS --config <node 1's config>` (the shared store). */
  cli(args: string[], input?: string): Promise<RunResult>;
  /** How many audit `login` records of `user` each node wrote (since its last start). */
  loginsPerNode(user: string): Record<string, number>;
  close(): Promise<void>;
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, host, () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

/** Whether every port of the range can be listened on at `host` right now. */
async function rangeFree(host: string, range: { minPort: number; maxPort: number }): Promise<boolean> {
  for (let port = range.minPort; port <= range.maxPort; port++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, host, () => s.close(() => resolve(true)));
    });
    if (!ok) return false;
  }
  return true;
}

async function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

function merge(base: Record<string, unknown>, extra: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(extra ?? {})) {
    const cur = out[k];
    out[k] = typeof v === 'object' && v !== null && !Array.isArray(v) && typeof cur === 'object' && cur !== null ? { ...cur, ...v } : v;
  }
  return out;
}

interface BalancedNode {
  id: string;
  ip: string;
  pasv: { minPort: number; maxPort: number };
}

function haproxyConfig(o: { port: number; nodePort: number; nodes: BalancedNode[]; layout: PassiveLayout; statsSocket: string }): string {
  const lines = [
    'global',
    '  maxconn 2000',
    // Answers only once every listener is bound: the helper's sign that HAProxy is up (and which servers it sees up).
    `  stats socket ${o.statsSocket} mode 600 level user`,
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    '  timeout client 120s',
    '  timeout server 120s',
    // A node that refuses the connection (stopped, restarting) is skipped: the client lands on another one.
    '  retries 2',
    '  option redispatch',
    'frontend ftp',
    `  bind ${BALANCER_IP}:${o.port}`,
    '  default_backend nodes',
    'backend nodes',
    '  balance roundrobin',
    // Health checks send a PROXY v2 LOCAL header, which a node answers like any connection of the balancer itself.
    ...o.nodes.map((n) => `  server ${n.id} ${n.ip}:${o.nodePort} send-proxy-v2 check check-send-proxy inter 300ms fall 1 rise 1`),
  ];
  if (o.layout === 'balanced') {
    for (const n of o.nodes) {
      // No port on the server line: the connection keeps the port it came in on, inside the node's own range.
      lines.push(`frontend pasv_${n.id}`, `  bind ${BALANCER_IP}:${n.pasv.minPort}-${n.pasv.maxPort}`, `  default_backend pasv_${n.id}`);
      lines.push(`backend pasv_${n.id}`, `  server ${n.id} ${n.ip} send-proxy-v2`);
    }
  }
  return lines.join('\n') + '\n';
}

// Every node and balancer process this test process started and that still runs. When the test runner stops a file
// that ran past its time (SIGTERM, no `after` hooks), they would outlive it and load the machine: killed here.
const children = new Set<ChildProcess>();
function track(proc: ChildProcess): ChildProcess {
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return proc;
}
const killChildren = () => {
  for (const proc of children) proc.kill('SIGKILL');
};
process.once('exit', killChildren);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    killChildren();
    process.exit(128 + (signal === 'SIGTERM' ? 15 : 2));
  });
}

/** One command on HAProxy's stats socket; null when it does not answer. */
function haproxyCommand(socket: string, command: string): Promise<string | null> {
  return new Promise((resolve) => {
    let out = '';
    const s = net.connect({ path: socket }, () => s.end(`${command}\n`));
    s.setEncoding('utf8');
    s.on('data', (d: string) => (out += d));
    s.on('end', () => resolve(out));
    s.on('error', () => resolve(null));
  });
}

/** HAProxy's servers of `backend` that its health checks see up. */
async function serversUp(socket: string, backend: string): Promise<string[]> {
  const csv = (await haproxyCommand(socket, 'show stat')) ?? '';
  // CSV columns: pxname, svname, ...; status is the 18th.
  return csv.split('\n').map((l) => l.split(',')).filter((f) => f[0] === backend && f[1] !== 'BACKEND' && f[1] !== 'FRONTEND' && f[17] === 'UP').map((f) => f[1]!);
}

/** Starts HAProxy; resolves once every listener is bound, or rejects with its error output (and nothing running). */
async function startHaproxy(cfg: string, statsSocket: string): Promise<ChildProcess> {
  const proc = track(spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` } }));
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 10_000;
  while (proc.exitCode !== null || (await haproxyCommand(statsSocket, 'show info')) === null) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`haproxy did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  // Unexpected later: said on stderr, since every test through the balancer fails after it.
  proc.once('exit', (code, signal) => {
    if (signal !== 'SIGKILL') process.stderr.write(`haproxy exited (${code ?? signal}):\n${stderr.slice(-2_000)}\n`);
  });
  return proc;
}

/** Starts PostgreSQL (unless given), the nodes and HAProxy; the store is filled from the partners file first. */
export async function startCluster(opts: ClusterOptions): Promise<ClusterTopology> {
  const dir = await mkdtemp(join(tmpdir(), 'ftpsd-cluster-'));
  const storage: ClusterStorage = (opts.storage ?? ((d: string): ClusterStorage => ({ root: join(d, 'shared') })))(dir);
  const onS3 = isS3Path(storage.root);
  if (!onS3) await mkdir(storage.root, { recursive: true });
  const postgres = opts.postgres ?? (await startPostgres());
  const ownPostgres = opts.postgres === undefined;
  const storeUrl = await postgres.newDatabase();
  const store = await openStore({ url: storeUrl, path: '' });
  const partners = parsePartnerFile(opts.partners.replaceAll('{root}', storage.root), 'cluster partners');
  await applyPartnerFile(store, partners, { actor: 'test', dryRun: false });
  for (const [name, password] of Object.entries(opts.passwords)) await setPasswordHash(store.db, name, await hashPassword(password), Date.now());

  const nodePort = await freePort(NODE_IPS[0]);
  const count = opts.nodes ?? 3;
  // The balancer first: it listens on 127.0.0.1, where other test processes listen too (on passive ranges picked
  // the same way), so a taken port means new ports and another try before any node is configured. The nodes listen
  // on addresses of their own.
  const statsSocket = join(dir, 'haproxy.sock');
  const haproxyCfg = join(dir, 'haproxy.cfg');
  let port = 0;
  let balanced: BalancedNode[] = [];
  let started: ChildProcess | null = null;
  for (let attempt = 1; started === null; attempt++) {
    port = await freePort(BALANCER_IP);
    balanced = [];
    for (let i = 0; i < count; i++) {
      let pasv = passiveRange(20);
      for (let tries = 0; opts.layout === 'balanced' && tries < 20 && !(await rangeFree(BALANCER_IP, pasv)); tries++) pasv = passiveRange(20);
      balanced.push({ id: `node${i + 1}`, ip: NODE_IPS[i]!, pasv });
    }
    await writeFile(haproxyCfg, haproxyConfig({ port, nodePort, nodes: balanced, layout: opts.layout, statsSocket }));
    try {
      started = await startHaproxy(haproxyCfg, statsSocket);
    } catch (err) {
      if (attempt < 5 && /Address already in use/.test((err as Error).message)) continue;
      await store.close();
      if (ownPostgres) await postgres.stop();
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }
  const haproxy = started;
  const nodes: ClusterNode[] = [];
  for (const [i, { id, ip, pasv }] of balanced.entries()) {
    const configFile = join(dir, `${id}.yaml`);
    const config = merge(
      merge(
        {
          listen: { host: ip, port: nodePort },
          pasv: { ...pasv, externalAddress: opts.layout === 'direct' ? ip : BALANCER_IP, epsv: opts.layout !== 'direct' },
          store: { url: storeUrl, pollIntervalMs: 500 },
          cluster: { nodeId: id, heartbeatIntervalMs: 500, sessionExpiryMs: 3_000 },
          proxyProtocol: { trustedCidrs: [`${BALANCER_IP}/32`], passive: opts.layout === 'balanced', headerTimeoutMs: 2_000 },
          users: { file: join(dir, 'no-users.yaml'), demoHome: onS3 ? join(dir, 'demo') : join(storage.root, 'demo') },
          tls: { selfSignedDir: join(dir, 'certs') },
          defender: { file: join(dir, `bans-${id}.json`) },
          limits: { failedLoginDelayMs: 50 },
          log: { level: 'info', auditFile: join(dir, 'audit', 'audit-{node}.log'), auditHmacKeyFile: join(dir, 'audit.key') },
          shutdown: { graceMs: 10_000 },
          // On by default on 127.0.0.1:8443, which three nodes on one machine cannot all take.
          admin: { enabled: false },
        },
        storage.config,
      ),
      merge(opts.config ?? {}, opts.nodeConfig?.(id, i)),
    );
    await writeFile(configFile, stringify(config));
    nodes.push(makeNode(id, ip, pasv, configFile, dir, nodePort));
  }
  try {
    // The first node creates the self-signed certificate the others then share; the rest start together.
    await nodes[0]!.start();
    await Promise.all(nodes.slice(1).map((n) => n.start()));
    // HAProxy marked them down while they started; its next checks (every 300 ms) see them up.
    const deadline = Date.now() + 10_000;
    while ((await serversUp(statsSocket, 'nodes')).length < nodes.length) {
      if (Date.now() > deadline) throw new Error(`haproxy does not see every node up: ${String(await haproxyCommand(statsSocket, 'show stat'))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    // Nothing left running when the topology does not come up (a test's `after` never sees it).
    haproxy.kill('SIGKILL');
    await Promise.all(nodes.map((n) => n.kill()));
    await store.close();
    if (ownPostgres) await postgres.stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    dir,
    storage,
    port,
    nodePort,
    nodes,
    storeUrl,
    layout: opts.layout,
    store,
    cli: (args, input) => runProcess(process.execPath, [BIN, ...args, '--config', nodes[0]!.configFile], { cwd: dir, env: { FTPSD_CONFIG: '' }, input, timeoutMs: 20_000 }),
    loginsPerNode: (user) => Object.fromEntries(nodes.map((n) => [n.id, n.logs().filter((l) => l.audit === true && l.event === 'login' && l.user === user).length])),
    async close() {
      haproxy.kill('SIGKILL');
      await Promise.all(nodes.map((n) => n.kill()));
      await store.close();
      if (ownPostgres) await postgres.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function makeNode(id: string, ip: string, pasv: { minPort: number; maxPort: number }, configFile: string, dir: string, nodePort: number): ClusterNode {
  let lines: string[] = [];
  let stderr = '';
  let waiters = new Set<() => void>();
  let proc: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  const logs = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const node: ClusterNode = {
    id,
    ip,
    pasv,
    configFile,
    get proc() {
      return proc!;
    },
    get running() {
      return proc !== null && proc.exitCode === null && proc.signalCode === null;
    },
    logs,
    waitForLog(match, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = logs().find(match);
          if (found === undefined) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${id}: timed out waiting for a log line; last lines:\n${lines.slice(-10).join('\n')}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async kill() {
      if (node.running) proc!.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (node.running) proc!.kill('SIGTERM');
      // Bounded: past its grace time a node that has not exited is killed.
      const timer = setTimeout(() => node.running && proc!.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
    async start() {
      lines = [];
      stderr = '';
      waiters = new Set();
      const child = track(spawn(process.execPath, [BIN, 'serve', '--config', configFile], { cwd: dir, env: { ...process.env, FTPSD_CONFIG: '' }, stdio: ['ignore', 'pipe', 'pipe'] }));
      proc = child;
      exited = new Promise((resolve) => child.once('exit', () => resolve()));
      let outBuf = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        outBuf += d;
        const parts = outBuf.split('\n');
        outBuf = parts.pop() ?? '';
        lines.push(...parts.filter((l) => l.startsWith('{')));
        for (const w of waiters) w();
      });
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      // Generous: three nodes starting at once on a busy 2-core machine take several seconds each.
      const deadline = Date.now() + 45_000;
      while (!/listening on/.test(stderr)) {
        if (!node.running) throw new Error(`${id} exited at start:\n${stderr}`);
        if (Date.now() > deadline) throw new Error(`${id} did not start:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      // Listening: HAProxy's next health check (every 300 ms) puts it back in rotation.
      while (!(await canConnect(ip, nodePort))) {
        if (Date.now() > deadline) throw new Error(`${id} does not accept connections`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
  return node;
}

/**
 * Storage on S3 for the nodes: homes and folders of the partners file (`{root}/...`) under `PREFIX` of `bucket`, on
 * the location `location` names (see test/helpers/s3.ts), with `settings` added to storage.s3.
 */
export function s3ClusterStorage(
  location: { name: string; endpoint: string; accessKeyId: string; secretAccessKey: string },
  bucket: string,
  prefix: string,
  settings: Record<string, unknown> = {},
): (dir: string) => ClusterStorage {
  return () => ({ root: `s3://${location.name}/${bucket}/${prefix}`, config: { storage: { s3: { locations: [location], ...settings } } } });
}
