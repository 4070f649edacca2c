import { execFile } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import type { Authorization } from 'acme-client';
import type { Logger } from '../log/logger.js';
import { AcmeError } from './acme-error.js';
import type { ChallengeInfo, ChallengeResponder } from './challenge-responder.js';

export type DnsHookAction = 'add' | 'remove';

/** Enough of the hook's stderr to explain a failure without flooding the log. */
const STDERR_EXCERPT_CHARS = 500;

/**
 * The TXT record name for a domain, as a fully qualified name with the trailing dot (RFC 8555 section 8.4).
 * A wildcard order's authorization names the base domain, so `*.example.com` and `example.com` share
 * `_acme-challenge.example.com.`, each with its own value. The same convention as lego's exec provider.
 */
export function dnsRecordName(domain: string): string {
  return `_acme-challenge.${domain.replace(/^\*\./, '').replace(/\.$/, '')}.`;
}

/**
 * Runs `HOOK add|remove NAME VALUE` without a shell (execFile), so names and values never reach a shell parser.
 * The hook is the path of an executable. A run longer than `timeoutMs` is killed; a non-zero exit becomes an
 * AcmeError carrying the start of its stderr.
 */
export function runDnsHook(hook: string, action: DnsHookAction, name: string, value: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(hook, [action, name, value], { timeout: timeoutMs, killSignal: 'SIGKILL', windowsHide: true }, (err, _stdout, stderr) => {
      if (err === null) {
        resolve();
        return;
      }
      const excerpt = stderr.toString().trim().slice(0, STDERR_EXCERPT_CHARS);
      if (err.killed === true) {
        reject(new AcmeError('hook_timeout', `dns-01 hook ${action} did not finish within ${timeoutMs} ms`, { cause: err }));
      } else if (typeof err.code === 'number') {
        reject(new AcmeError('hook_failed', `dns-01 hook ${action} exited with code ${err.code}${excerpt === '' ? '' : `: ${excerpt}`}`, { cause: err }));
      } else {
        reject(new AcmeError('hook_failed', `dns-01 hook ${hook} cannot be run: ${err.message}`, { cause: err }));
      }
    });
  });
}

/**
 * DNS-01 through an operator-supplied hook. After `add` it waits acme.dns01.propagationDelayMs before the CA is
 * told to look. Records still present at `stop` (an order that failed half-way) are removed there as well.
 */
export class Dns01Hook implements ChallengeResponder {
  readonly type = 'dns-01' as const;
  readonly #hook: string;
  readonly #timeoutMs: number;
  readonly #propagationDelayMs: number;
  readonly #log: Logger;
  /** name + value pairs added and not yet removed. */
  readonly #added = new Map<string, { name: string; value: string }>();

  constructor(options: { hook: string; timeoutMs: number; propagationDelayMs: number; log: Logger }) {
    this.#hook = options.hook;
    this.#timeoutMs = options.timeoutMs;
    this.#propagationDelayMs = options.propagationDelayMs;
    this.#log = options.log;
  }

  async start(): Promise<void> {
    if (this.#hook === '') throw new AcmeError('config', 'acme.dns01.hook is not set');
  }

  async stop(): Promise<void> {
    const left = [...this.#added.values()];
    this.#added.clear();
    await Promise.allSettled(left.map((r) => this.#run('remove', r.name, r.value)));
  }

  async create(authz: Authorization, _challenge: ChallengeInfo, keyAuthorization: string): Promise<void> {
    // For dns-01, acme-client's keyAuthorization is already the TXT value: base64url(SHA-256(key authorization)).
    const name = dnsRecordName(authz.identifier.value);
    this.#added.set(`${name} ${keyAuthorization}`, { name, value: keyAuthorization });
    await this.#run('add', name, keyAuthorization);
    if (this.#propagationDelayMs > 0) await delay(this.#propagationDelayMs);
  }

  async remove(authz: Authorization, _challenge: ChallengeInfo, keyAuthorization: string): Promise<void> {
    const name = dnsRecordName(authz.identifier.value);
    this.#added.delete(`${name} ${keyAuthorization}`);
    await this.#run('remove', name, keyAuthorization);
  }

  async #run(action: DnsHookAction, name: string, value: string): Promise<void> {
    const started = Date.now();
    try {
      await runDnsHook(this.#hook, action, name, value, this.#timeoutMs);
      this.#log.debug({ action, name, ms: Date.now() - started }, 'acme dns-01 hook done');
    } catch (err) {
      this.#log.warn({ action, name, err: (err as Error).message }, 'acme dns-01 hook failed');
      throw err;
    }
  }
}
