import { spawn } from 'node:child_process';

// Real FTPS clients (curl, lftp, Python's ftplib) run as child processes, so tests see what users of those clients
// see. Every run is bounded: the child's whole process group is killed when the timeout passes.

/** Long enough for a slow CI machine, short enough that a hung client fails the test instead of the suite. */
export const CLIENT_TIMEOUT_MS = 30_000;

export interface RunOptions {
  /** Kill the client after this long; the result then has timedOut: true. Default CLIENT_TIMEOUT_MS. */
  timeoutMs?: number;
  cwd?: string;
  /** Added to (not replacing) the test process's environment. */
  env?: NodeJS.ProcessEnv;
  /** Written to the child's standard input, which is then closed. */
  input?: string | Buffer;
}

export interface RunResult {
  /** Exit code; null when the child was killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Spawns `command` in its own process group, collects its output and kills the group after the timeout. */
export function runProcess(command: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? CLIENT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      // Own process group, so a client that forks (lftp's background jobs) is killed with its children.
      detached: true,
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    child.stdout.on('data', (b: Buffer) => stdout.push(b));
    child.stderr.on('data', (b: Buffer) => stderr.push(b));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, timeoutMs);
    timer.unref();
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        timedOut,
      });
    });
    // A client that exits before reading its input closes the pipe; that is its business, not an error here.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/**
 * Add to curl uploads (-T): curl 7.88 (Debian 12) never reads an FTPS data connection while uploading, so over
 * TLS 1.3 the server's NewSessionTicket stays unread and closing the socket sends a TCP RST that can discard the end
 * of the upload (curl issue 6149); seen against vsftpd in about half the uploads. TLS 1.2 has no post-handshake
 * ticket on the data connection.
 */
export const CURL_UPLOAD_TLS_ARGS: readonly string[] = ['--tls-max', '1.2'];

/**
 * Runs curl with `args` appended to quiet, failure-reporting defaults. Tests add `--ssl-reqd -k` and the URL
 * themselves, so they can also check what curl does without TLS.
 */
export function runCurl(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return runProcess('curl', ['--silent', '--show-error', '--max-time', String(secondsOf(opts)), ...args], opts);
}

export interface LftpOptions extends RunOptions {
  /** When set, the script is preceded by `open` on this port with the credentials below. */
  port?: number;
  host?: string;
  user?: string;
  password?: string;
  /** Extra `set` lines, after the defaults, so a test can override any of them. */
  settings?: readonly string[];
}

/**
 * lftp settings for explicit FTPS against a server with a self-signed certificate: TLS for login and data
 * (RFC 4217 PROT P), no certificate check, one try per operation and short network timeouts so a failure
 * surfaces as an exit code instead of lftp's patient retrying.
 */
export const LFTP_FTPS_SETTINGS: readonly string[] = [
  'set cmd:fail-exit true',
  'set ftp:ssl-allow true',
  'set ftp:ssl-force true',
  'set ftp:ssl-protect-data true',
  'set ftp:ssl-protect-list true',
  'set ftp:passive-mode true',
  'set ssl:verify-certificate no',
  'set ssl:check-hostname no',
  'set net:max-retries 1',
  'set net:reconnect-interval-base 1',
  'set net:timeout 10',
  'set xfer:clobber on',
];

/** Runs an lftp script (one command per line) with LFTP_FTPS_SETTINGS and, given a port, an `open` line. */
export function runLftp(script: string, opts: LftpOptions = {}): Promise<RunResult> {
  const lines = [...LFTP_FTPS_SETTINGS, ...(opts.settings ?? [])];
  if (opts.port !== undefined) {
    const user = lftpQuote(`${opts.user ?? 'anonymous'},${opts.password ?? ''}`);
    lines.push(`open -u ${user} -p ${opts.port} ${opts.host ?? '127.0.0.1'}`);
  }
  lines.push(script);
  // With no arguments and a non-terminal standard input, lftp reads its commands from it, so credentials never appear in the process list.
  return runProcess('lftp', [], { ...opts, input: lines.join('\n') + '\n' });
}

function lftpQuote(s: string): string {
  return `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** Runs Python code with `python3 -c`; prepend PY_REUSE_FTP_TLS to talk to a server that requires session reuse. */
export function runPython(code: string, opts: RunOptions = {}): Promise<RunResult> {
  return runProcess('python3', ['-c', code], opts);
}

/**
 * Python source defining `ReusedSessionFTP_TLS`, the well-known ftplib.FTP_TLS subclass whose data connections
 * resume the control connection's TLS session (`session=self.sock.session`), as servers that bind data connections
 * to their control session require (vsftpd's require_ssl_reuse, ours by default). Also `ftps_login(port, user,
 * password, host='127.0.0.1')`, which returns a logged-in client with PROT P and no certificate check.
 */
export const PY_REUSE_FTP_TLS = String.raw`
import ftplib, ssl

class ReusedSessionFTP_TLS(ftplib.FTP_TLS):
    """Data connections resume the control connection's TLS session."""

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size

def ftps_login(port, user, password, host='127.0.0.1', timeout=10):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ftp = ReusedSessionFTP_TLS(context=ctx, timeout=timeout)
    ftp.connect(host, port)
    ftp.auth()
    ftp.login(user, password)
    ftp.prot_p()
    return ftp
`;

function secondsOf(opts: RunOptions): number {
  // curl's own limit a little under ours, so curl reports the timeout itself when it can.
  return Math.max(1, Math.floor((opts.timeoutMs ?? CLIENT_TIMEOUT_MS) / 1000) - 1);
}
