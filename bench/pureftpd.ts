import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { VSFTPD_PASV_PORTS, freePort, freePortRange } from '../test/helpers/vsftpd.js';

// Pure-FTPd as a second reference peer: a compact, fast C server (one process per session). Debian's package
// conflicts with vsftpd, so scripts/bench-peers.sh unpacks it into bench/peers/ instead of installing it; it runs
// from there in the foreground as a child of the driver, with TLS required for control and data (-Y 3), one PureDB
// virtual user mapped to the system account `nobody`, an ECDSA P-256 certificate like the other servers'.

const PEER_DIR = 'bench/peers/pure-ftpd';
const START_TIMEOUT_MS = 10_000;
/** Every system has it; the virtual user's files belong to it. */
const NOBODY = { name: 'nobody', uid: 65534 };

export interface PureFtpdInstance {
  port: number;
  user: string;
  password: string;
  dataDir: string;
  pid: number;
  stop(): Promise<void>;
}

export async function startPureFtpd(repoDir: string, maxSessions: number): Promise<PureFtpdInstance> {
  const binary = resolve(repoDir, PEER_DIR, 'usr/sbin/pure-ftpd');
  const purePw = resolve(repoDir, PEER_DIR, 'usr/bin/pure-pw');
  if (!existsSync(binary)) throw new Error(`${binary} not found (scripts/bench-peers.sh unpacks it)`);
  if (process.getuid?.() !== 0) throw new Error('pure-ftpd switches to its virtual user\'s uid: run as root');
  const root = await mkdtemp(join(tmpdir(), 'pureftpd-'));
  try {
    await chmod(root, 0o755);
    const dataDir = join(root, 'home');
    await mkdir(dataDir);
    const gid = Number(execFileSync('id', ['-g', NOBODY.name], { encoding: 'utf8' }).trim());
    await chown(dataDir, NOBODY.uid, gid);
    const user = 'bench';
    const password = randomBytes(12).toString('base64url');
    const passwd = join(root, 'pureftpd.passwd');
    const pdb = join(root, 'pureftpd.pdb');
    // pure-pw reads the password twice from standard input; the hash it stores is its default (argon2id).
    execFileSync(purePw, ['useradd', user, '-u', String(NOBODY.uid), '-g', String(gid), '-d', dataDir, '-f', passwd, '-m', '-F', pdb], {
      input: `${password}\n${password}\n`,
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    const pem = join(root, 'pure-ftpd.pem');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
        '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(root, 'key.pem'), '-out', join(root, 'cert.pem')],
      { stdio: 'ignore' },
    );
    // -2 takes one file holding the key and the certificate.
    await writeFile(pem, (await readFile(join(root, 'key.pem'), 'utf8')) + (await readFile(join(root, 'cert.pem'), 'utf8')), { mode: 0o600 });

    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const pasvMin = await freePortRange(VSFTPD_PASV_PORTS);
      const args = [
        '-S', `127.0.0.1,${port}`,
        '-l', `puredb:${pdb}`,
        '-E', // no anonymous logins
        '-H', // no reverse lookups
        '-A', // chroot every user to its home
        '-Y', '3', // TLS required on the control connection and on every data connection
        '-2', pem,
        '-p', `${pasvMin}:${pasvMin + VSFTPD_PASV_PORTS - 1}`,
        '-P', '127.0.0.1',
        '-c', String(maxSessions),
        '-C', String(maxSessions),
        '-u', '1', // accept the uid of `nobody`
      ];
      const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      const stderr: Buffer[] = [];
      child.stderr?.on('data', (b: Buffer) => stderr.push(b));
      try {
        await waitForGreeting(port, child, START_TIMEOUT_MS);
      } catch (err) {
        await stopChild(child);
        lastError = new Error(`pure-ftpd did not start: ${(err as Error).message}: ${Buffer.concat(stderr).toString('utf8').trim()}`);
        continue;
      }
      let stopped = false;
      return {
        port,
        user,
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

/** Resolves once `port` answers with a 220 greeting; rejects if `child` exits first or the time runs out. */
export function waitForGreeting(port: number, child: ChildProcess, timeoutMs: number, retryMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolvePromise, reject) => {
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      child.off('exit', onExit);
      if (err) reject(err);
      else resolvePromise();
    };
    const onExit = (code: number | null) => finish(new Error(`exited with code ${code}`));
    child.once('exit', onExit);
    const attempt = () => {
      if (done) return;
      if (Date.now() > deadline) return finish(new Error(`no 220 greeting within ${timeoutMs} ms`));
      const sock = connect(port, '127.0.0.1');
      let buf = '';
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        buf += d;
        if (!buf.includes('\n')) return;
        sock.destroy();
        finish(buf.startsWith('220') ? undefined : new Error(`unexpected greeting: ${buf.trim()}`));
      });
      sock.on('error', () => {
        sock.destroy();
        setTimeout(attempt, retryMs);
      });
    };
    attempt();
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolvePromise) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 2_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolvePromise();
    });
    // The listener's SIGTERM ends it; session processes end with their clients' connections.
    child.kill('SIGTERM');
  });
}
