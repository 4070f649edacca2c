import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { runProcess, type RunResult } from './clients.js';

// A private X server (Xvfb) for driving a GUI client in tests, and the two tools that act on it: xdotool (find
// windows, click, type) and ImageMagick's `import` (screenshots). Every wait has a deadline and every process started
// here is stopped by `stop()`.

/** Why no X display can be had here, or null when Xvfb is installed. */
export function xvfbUnavailable(): string | null {
  return onPath('Xvfb') ? null : 'Xvfb is not installed (Debian package xvfb; scripts/install-test-deps.sh installs it)';
}

export function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v "$1" >/dev/null`, 'sh', command]).status === 0;
}

/** Polls `probe` until it returns something other than undefined, or throws `what` once `timeoutMs` has passed. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined | Promise<T | undefined>, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Stops a process group started with `detached: true`: SIGTERM, then SIGKILL if it is still there after `graceMs`. */
export async function stopGroup(child: ChildProcess, graceMs = 2_000): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  signalGroup(child.pid, 'SIGTERM');
  const timer = sleep(graceMs).then(() => 'late' as const);
  if ((await Promise.race([exited.then(() => 'exited' as const), timer])) === 'late') {
    signalGroup(child.pid, 'SIGKILL');
    await Promise.race([exited, sleep(graceMs)]);
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

export interface XDisplay {
  /** ":N", for DISPLAY. */
  readonly name: string;
  /** Runs xdotool on this display; throws with its stderr when it fails. */
  xdotool(args: readonly string[]): Promise<string>;
  /** Window ids whose title matches `titleRegex` (xdotool's regular expression), visible ones only. */
  windows(titleRegex: string): Promise<string[]>;
  /** Writes a PNG of the whole screen to `path`. */
  screenshot(path: string): Promise<void>;
  stop(): Promise<void>;
}

export const SCREEN = { width: 1280, height: 1024 } as const;

/**
 * Starts Xvfb on a display number it picks itself (`-displayfd`), so parallel test files and a developer's own X
 * server never collide, and resolves once it accepts clients.
 */
export async function startXvfb(timeoutMs = 10_000): Promise<XDisplay> {
  const child = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', `${SCREEN.width}x${SCREEN.height}x24`, '-nolisten', 'tcp'], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const stderr: Buffer[] = [];
  child.stderr?.on('data', (b: Buffer) => stderr.push(b));
  let number: string;
  try {
    number = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`Xvfb named no display within ${timeoutMs} ms`)), timeoutMs);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`Xvfb exited (${code ?? signal}) before naming a display: ${Buffer.concat(stderr).toString().trim()}`));
      });
      // Xvfb writes the display number and a newline to the descriptor once it is ready for clients.
      const fd3 = child.stdio[3] as NodeJS.ReadableStream;
      fd3.on('data', (b: Buffer) => {
        out += b.toString();
        const m = /^(\d+)\n/.exec(out);
        if (m !== null) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
    });
  } catch (err) {
    await stopGroup(child);
    throw err;
  }
  child.removeAllListeners('exit');
  const name = `:${number}`;
  const env = { DISPLAY: name };
  const check = (what: string, r: RunResult): string => {
    if (r.code !== 0) throw new Error(`${what} failed (${r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`}): ${r.stderr.trim()}`);
    return r.stdout;
  };
  const display: XDisplay = {
    name,
    async xdotool(args) {
      return check(`xdotool ${args.join(' ')}`, await runProcess('xdotool', args, { env, timeoutMs: 10_000 }));
    },
    async windows(titleRegex) {
      // xdotool search exits 1 when nothing matches; that is an answer here, not an error.
      const r = await runProcess('xdotool', ['search', '--onlyvisible', '--name', titleRegex], { env, timeoutMs: 10_000 });
      return r.stdout.split('\n').filter((l) => /^\d+$/.test(l));
    },
    async screenshot(path) {
      check('import (screenshot)', await runProcess('import', ['-window', 'root', path], { env, timeoutMs: 15_000 }));
    },
    stop: () => stopGroup(child),
  };
  return display;
}
