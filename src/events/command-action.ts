import { spawn } from 'node:child_process';
import type { CommandSpec, EventPayload } from '../store/event-model.js';
import { envName, fieldText } from './payload.js';

// A program started for an event: argv with `{field}` placeholders replaced by payload fields, the same fields as
// FTPSD_* environment variables, and the whole payload as JSON on standard input and in FTPSD_PAYLOAD. Never a
// shell: a file name with quotes, `;` or `$(...)` is one argument and nothing more. The program gets only a few
// variables of the server's own environment (PATH, HOME, LANG, TZ): never its store URL or secrets.

export interface CommandResult {
  /** Exit code; null when killed. */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  ms: number;
}

const INHERITED = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ'];

/** `extra`: fields only some runs have, such as `file` (the staged upload a pre-commit check reads). */
export function commandArgv(spec: CommandSpec, payload: EventPayload, extra: Record<string, string> = {}): string[] {
  const fields = payload as unknown as Record<string, unknown>;
  return spec.argv.map((arg) =>
    arg.replace(/\{([A-Za-z][A-Za-z0-9]*)\}/g, (whole, name: string) => {
      if (name in extra) return extra[name]!;
      if (name in fields) return fieldText(fields[name]);
      return whole;
    }),
  );
}

export function commandEnv(spec: CommandSpec, payload: EventPayload, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of INHERITED) if (process.env[k] !== undefined) env[k] = process.env[k];
  Object.assign(env, spec.env);
  for (const [k, v] of Object.entries(payload)) env[envName(k)] = fieldText(v);
  for (const [k, v] of Object.entries(extra)) env[envName(k)] = v;
  env.FTPSD_EVENT_ID = payload.id;
  env.FTPSD_PAYLOAD = JSON.stringify(payload);
  return env;
}

export function runCommand(spec: CommandSpec, payload: EventPayload, opts: { timeoutMs: number; maxOutputBytes: number; extra?: Record<string, string> }): Promise<CommandResult> {
  const argv = commandArgv(spec, payload, opts.extra);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    if (argv.length === 0 || argv[0] === '') return reject(new Error('the command has no program'));
    const child = spawn(argv[0]!, argv.slice(1), {
      env: commandEnv(spec, payload, opts.extra),
      stdio: ['pipe', 'pipe', 'pipe'],
      shell: false,
      // Its own process group, so a timeout also ends whatever it started.
      detached: true,
    });
    const out = boundedText(opts.maxOutputBytes);
    const err = boundedText(opts.maxOutputBytes);
    child.stdout.on('data', out.add);
    child.stderr.on('data', err.add);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, opts.timeoutMs);
    timer.unref();
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, stdout: out.text(), stderr: err.text(), ms: Date.now() - started });
    });
    // A program that never reads its input closes the pipe; that is its business.
    child.stdin.on('error', () => undefined);
    child.stdin.end(JSON.stringify(payload));
  });
}

function boundedText(max: number): { add: (b: Buffer) => void; text: () => string } {
  const chunks: Buffer[] = [];
  let kept = 0;
  let dropped = 0;
  return {
    add: (b: Buffer) => {
      if (kept >= max) {
        dropped += b.length;
        return;
      }
      const part = b.subarray(0, max - kept);
      chunks.push(part);
      kept += part.length;
      dropped += b.length - part.length;
    },
    text: () => Buffer.concat(chunks).toString('utf8') + (dropped > 0 ? `… (${dropped} more bytes)` : ''),
  };
}
