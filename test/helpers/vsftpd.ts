import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// vsftpd as a reference peer for side-by-side benchmarks: explicit FTPS with TLS forced for login and data and
// data connections required to resume the control session's TLS session, like ftpsd's defaults.

export const VSFTPD_BINARY = '/usr/sbin/vsftpd';
export const VSFTPD_USER = 'ftpbench';
/** How long vsftpd may take to greet after being started. */
export const VSFTPD_START_TIMEOUT_MS = 10_000;
/** Passive ports reserved per instance; 100 concurrent sessions each hold at most one. */
export const VSFTPD_PASV_PORTS = 200;

export interface VsftpdOptions {
  /** Extra vsftpd.conf lines, appended last (vsftpd takes the last value of a repeated key). */
  extraConfig?: readonly string[];
}

export interface VsftpdInstance {
  port: number;
  pasvMinPort: number;
  pasvMaxPort: number;
  user: string;
  password: string;
  /** The user's home: the FTP root of the session, writable by the user. */
  dataDir: string;
  /** The listening (parent) vsftpd process; each session adds its own processes under it. */
  pid: number;
  /** Stops vsftpd and its session processes and removes the temporary directory. Idempotent. */
  stop(): Promise<void>;
}

export class VsftpdUnavailableError extends Error {
  override name = 'VsftpdUnavailableError';
}

/**
 * Starts vsftpd on 127.0.0.1 and a free high port, in the foreground as a child of this process. Local logins need
 * a real system account (vsftpd authenticates through PAM), so this needs root: it creates or updates the system
 * user VSFTPD_USER with a fresh random password and a home in the temporary directory.
 */
export async function startVsftpd(opts: VsftpdOptions = {}): Promise<VsftpdInstance> {
  if (!existsSync(VSFTPD_BINARY)) throw new VsftpdUnavailableError(`${VSFTPD_BINARY} not found (run scripts/install-test-deps.sh)`);
  if (process.getuid?.() !== 0) throw new VsftpdUnavailableError('vsftpd local logins need a system user: run as root');

  const root = await mkdtemp(join(tmpdir(), 'vsftpd-'));
  try {
    // The session runs as the FTP user after login, so it must be able to reach its home through this directory.
    await chmod(root, 0o755);
    const dataDir = join(root, 'home');
    const emptyDir = join(root, 'empty');
    await mkdir(dataDir);
    await mkdir(emptyDir, { mode: 0o755 });
    const password = randomBytes(12).toString('base64url');
    const { uid, gid } = ensureSystemUser(VSFTPD_USER, dataDir, password);
    await chown(dataDir, uid, gid);

    const certFile = join(root, 'cert.pem');
    const keyFile = join(root, 'key.pem');
    makeSelfSignedCert(certFile, keyFile);

    let lastError: unknown;
    // A port found free can be taken before vsftpd binds it; a few tries cover that race.
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const pasvMinPort = await freePortRange(VSFTPD_PASV_PORTS);
      const pasvMaxPort = pasvMinPort + VSFTPD_PASV_PORTS - 1;
      const confFile = join(root, 'vsftpd.conf');
      await writeFile(
        confFile,
        vsftpdConfig({ port, pasvMinPort, pasvMaxPort, certFile, keyFile, emptyDir, logFile: join(root, 'vsftpd.log') }, opts.extraConfig ?? []),
      );
      const child = spawn(VSFTPD_BINARY, [confFile], { stdio: ['ignore', 'ignore', 'pipe'] });
      const stderr: Buffer[] = [];
      child.stderr?.on('data', (b: Buffer) => stderr.push(b));
      try {
        await waitForGreeting(port, child, VSFTPD_START_TIMEOUT_MS);
      } catch (err) {
        await stopChild(child);
        const text = Buffer.concat(stderr).toString('utf8').trim();
        lastError = new Error(`vsftpd did not start: ${(err as Error).message}${text ? `: ${text}` : ''}`);
        continue;
      }
      let stopped = false;
      return {
        port,
        pasvMinPort,
        pasvMaxPort,
        user: VSFTPD_USER,
        password,
        dataDir,
        pid: child.pid ?? -1,
        async stop() {
          if (stopped) return;
          stopped = true;
          await stopChild(child);
          await rm(root, { recursive: true, force: true });
        },
      };
    }
    throw lastError;
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw err;
  }
}

interface ConfigPaths {
  port: number;
  pasvMinPort: number;
  pasvMaxPort: number;
  certFile: string;
  keyFile: string;
  emptyDir: string;
  logFile: string;
}

export function vsftpdConfig(p: ConfigPaths, extra: readonly string[]): string {
  return [
    'listen=YES',
    'listen_ipv6=NO',
    'listen_address=127.0.0.1',
    `listen_port=${p.port}`,
    'background=NO',
    'anonymous_enable=NO',
    'local_enable=YES',
    'write_enable=YES',
    'local_umask=022',
    'pam_service_name=vsftpd',
    'use_localtime=YES',
    // Explicit FTPS (RFC 4217), TLS forced for login and data, data connections must resume the control session.
    // This vsftpd (3.0.3) knows only ssl_tlsv1/ssl_sslv2/ssl_sslv3: TLS 1.2 and 1.3 are always on.
    'ssl_enable=YES',
    'allow_anon_ssl=NO',
    'force_local_logins_ssl=YES',
    'force_local_data_ssl=YES',
    'require_ssl_reuse=YES',
    'ssl_tlsv1=NO',
    'ssl_sslv2=NO',
    'ssl_sslv3=NO',
    'ssl_ciphers=HIGH',
    `rsa_cert_file=${p.certFile}`,
    `rsa_private_key_file=${p.keyFile}`,
    'pasv_enable=YES',
    `pasv_min_port=${p.pasvMinPort}`,
    `pasv_max_port=${p.pasvMaxPort}`,
    'pasv_address=127.0.0.1',
    'connect_from_port_20=NO',
    // No per-IP or global cap below the benchmark's 100 concurrent sessions from 127.0.0.1.
    'max_clients=0',
    'max_per_ip=0',
    `secure_chroot_dir=${p.emptyDir}`,
    // The seccomp sandbox and network namespaces fail in containers; neither matters on loopback.
    'seccomp_sandbox=NO',
    'isolate=NO',
    'isolate_network=NO',
    'xferlog_enable=NO',
    `vsftpd_log_file=${p.logFile}`,
    ...extra,
    '',
  ].join('\n');
}

function ensureSystemUser(name: string, home: string, password: string): { uid: number; gid: number } {
  const exists = (() => {
    try {
      execFileSync('id', ['-u', name], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  // pam_shells (in Debian's /etc/pam.d/vsftpd) refuses accounts whose shell is not listed in /etc/shells.
  if (exists) execFileSync('usermod', ['--home', home, '--shell', '/bin/sh', name], { stdio: 'ignore' });
  else execFileSync('useradd', ['--system', '--no-create-home', '--home-dir', home, '--shell', '/bin/sh', name], { stdio: 'ignore' });
  execFileSync('chpasswd', [], { input: `${name}:${password}\n`, stdio: ['pipe', 'ignore', 'inherit'] });
  const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/** ECDSA P-256, the same key type as ftpsd's generated certificate, so handshake costs compare like for like. */
function makeSelfSignedCert(certFile: string, keyFile: string): void {
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyFile, '-out', certFile],
    { stdio: 'ignore' },
  );
}

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function canListen(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/** First port of `count` consecutive free ports in 20000-39999, below the default ephemeral range (32768+ varies). */
export async function freePortRange(count: number, host = '127.0.0.1'): Promise<number> {
  const maxTries = 20;
  for (let t = 0; t < maxTries; t++) {
    const base = 20_000 + Math.floor(Math.random() * (20_000 - count));
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await canListen(p, host);
    if (ok) return base;
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

function waitForGreeting(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const retryMs = 50;
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`exited with code ${code}`));
    };
    child.once('exit', onExit);
    let timer: NodeJS.Timeout | undefined;
    const attempt = () => {
      if (Date.now() > deadline) {
        child.off('exit', onExit);
        reject(new Error(`no 220 greeting within ${timeoutMs} ms`));
        return;
      }
      const sock = connect(port, '127.0.0.1');
      let buf = '';
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        buf += d;
        if (buf.includes('\n')) {
          sock.destroy();
          if (buf.startsWith('220')) {
            child.off('exit', onExit);
            resolve();
          } else {
            child.off('exit', onExit);
            reject(new Error(`unexpected greeting: ${buf.trim()}`));
          }
        }
      });
      sock.on('error', () => {
        sock.destroy();
        timer = setTimeout(attempt, retryMs);
      });
    };
    attempt();
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const graceMs = 2_000;
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    // vsftpd's listener passes SIGTERM on to nothing: session processes die when their control socket closes, which
    // happens as the benchmark's clients disconnect. Any left over are reaped by killSessionProcesses.
    killSessionProcesses(child.pid);
    child.kill('SIGTERM');
  });
}

/** Pids of the processes under `pid` (vsftpd forks two per session), read from /proc. */
export async function descendantPids(pid: number): Promise<number[]> {
  const out: number[] = [];
  const children = async (p: number): Promise<number[]> => {
    try {
      const tasks = await readFile(`/proc/${p}/task/${p}/children`, 'utf8');
      return tasks.split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const queue = [pid];
  const maxProcesses = 10_000;
  while (queue.length > 0 && out.length < maxProcesses) {
    const p = queue.shift()!;
    for (const c of await children(p)) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

function killSessionProcesses(pid: number | undefined): void {
  if (pid === undefined) return;
  let list = '';
  try {
    list = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' });
  } catch {
    return; // none
  }
  for (const p of list.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
