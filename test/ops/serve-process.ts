import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { writeUsersFile, type UserRecord } from '../../src/auth/users-file.js';
import { runProcess, type RunResult } from '../helpers/clients.js';
import { hashPassword, passiveRange } from '../helpers/server.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'ftpsd.js');

export interface ServeProcess {
  child: ChildProcess;
  port: number;
  dir: string;
  configFile: string;
  usersFile: string;
  home(user: string): string;
  /** Parsed JSON log lines written so far. */
  logs(): Array<Record<string, unknown>>;
  /** What the server wrote to standard error so far (the console lines for the operator). */
  stderr(): string;
  /** Resolves with the first log line matching, written after `since` lines (bounded by timeoutMs). */
  waitForLog(match: (l: Record<string, unknown>) => boolean, since?: number, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  writeConfig(extra: Record<string, unknown>): Promise<void>;
  writeUsers(users: Record<string, string>): Promise<void>;
  /** Runs `ftpsd ARGS --config FILE` in the server's directory (so it opens the same store). */
  cli(args: string[], input?: string): Promise<RunResult>;
  kill(): void;
}

/** A temp dir with a config file and users file, and `node bin/ftpsd.js serve --config FILE` running on it. */
export async function startServeProcess(opts: {
  users: Record<string, string>;
  config?: Record<string, unknown>;
  /** Flags for node itself, before the script (the launchers' `--max-semi-space-size=4`, for instance). */
  nodeArgs?: string[];
}): Promise<ServeProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'ftpsd-serve-'));
  const configFile = join(dir, 'ftpsd.yaml');
  const usersFile = join(dir, 'users.yaml');
  const home = (user: string) => join(dir, 'homes', user);
  const range = passiveRange();
  const base = {
    listen: { host: '127.0.0.1', port: 0 },
    pasv: range,
    users: { file: usersFile },
    tls: { selfSignedDir: join(dir, 'certs') },
    defender: { file: join(dir, 'bans.json') },
    limits: { failedLoginDelayMs: 50 },
    log: { level: 'info' },
    // The admin listener has tests of its own (test/admin/); these measure and drive FTPS.
    admin: { enabled: false },
  };
  const writeConfig = async (extra: Record<string, unknown>) => {
    const merged: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(extra)) {
      const cur = merged[k];
      merged[k] = typeof v === 'object' && v !== null && !Array.isArray(v) && typeof cur === 'object' ? { ...cur, ...v } : v;
    }
    await writeFile(configFile, stringify(merged));
  };
  const writeUsers = async (users: Record<string, string>) => {
    const records: Record<string, UserRecord> = {};
    for (const [name, password] of Object.entries(users)) {
      await mkdir(home(name), { recursive: true });
      records[name] = { password: await hashPassword(password), home: home(name), permissions: ['list', 'download', 'upload', 'delete', 'rename', 'mkdir'], allowedNetworks: [], clientCertificates: [], disabled: false };
    }
    await writeUsersFile(usersFile, { users: records });
  };
  await writeConfig(opts.config ?? {});
  await writeUsers(opts.users);

  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), BIN, 'serve', '--config', configFile], { cwd: dir, env: { ...process.env, FTPSD_CONFIG: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  const waiters = new Set<() => void>();
  let outBuf = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    outBuf += d;
    const parts = outBuf.split('\n');
    outBuf = parts.pop() ?? '';
    lines.push(...parts.filter((l) => l.startsWith('{')));
    for (const w of waiters) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    for (const w of waiters) w();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const logs = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);

  const waitFor = <T>(probe: () => T | undefined, what: string, timeoutMs: number): Promise<T> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const v = probe();
        if (v === undefined) return;
        cleanup();
        resolve(v);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}; stderr:\n${stderr}\nlog:\n${lines.slice(-20).join('\n')}`));
      }, timeoutMs);
      const onExit = () => {
        cleanup();
        reject(new Error(`server exited while waiting for ${what}; stderr:\n${stderr}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
        child.off('exit', onExit);
      };
      waiters.add(check);
      child.once('exit', onExit);
      check();
    });

  const port = await waitFor(() => {
    const m = /listening on [^\s]+:(\d+)/.exec(stderr);
    return m === null ? undefined : Number(m[1]);
  }, 'the listening line', 20_000);

  return {
    child,
    port,
    dir,
    configFile,
    usersFile,
    home,
    logs,
    stderr: () => stderr,
    waitForLog: (match, since = 0, timeoutMs = 10_000) => waitFor(() => logs().slice(since).find(match), 'a log line', timeoutMs),
    exited,
    writeConfig,
    writeUsers,
    cli: (args, input) => runProcess(process.execPath, [BIN, ...args, '--config', configFile], { cwd: dir, env: { FTPSD_CONFIG: '' }, input, timeoutMs: 20_000 }),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
