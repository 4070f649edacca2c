import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Logger } from 'pino';
import { FtpError } from '../errors.js';
import type { StagedUpload } from '../storage/backend.js';
import type { ActionSpec, EventPayload, RuleSpec } from '../store/event-model.js';
import { CHECK_EVENT } from '../store/event-model.js';
import { runCommand } from './command-action.js';
import { buildPayload, type EventFacts } from './payload.js';
import { ruleMatches } from './rules.js';
import { oneLine, type EventSettings } from './run-action.js';
import { postWebhook } from './webhook-action.js';

// The pre-commit check: the one part of events that holds a reply. The actions of every rule on `upload_check` that
// matches the upload run one after the other on its complete bytes, still under the hidden upload name. A command
// accepts with exit code 0 and refuses with any other, a webhook accepts with 2xx and refuses with 4xx; the first
// line of what it printed (or answered) is the reason the client is told. A check that times out, cannot run, or
// answers anything else decides events.checkTimeoutResult (refuse by default). A refused upload is never committed:
// it is moved to events.quarantineDir, or deleted; the refusal is audited and published as `upload_refused`.

export interface UploadCheckContext {
  /** Check rules for this user and path; their size filters are applied here, once the size is known. */
  rules: readonly RuleSpec[];
  action(name: string): ActionSpec | undefined;
  /** Who uploads what (session, user, path, TLS). */
  facts: Omit<EventFacts, 'event'>;
  node: string;
  settings: EventSettings;
  /** events.quarantineDir resolved, or null: refused uploads are deleted. */
  quarantineDir: string | null;
  log: Logger;
  audit(event: string, fields: Record<string, unknown>): void;
  publish(facts: EventFacts): void;
}

type Verdict = { kind: 'accept' } | { kind: 'refuse'; reason: string } | { kind: 'undecided'; why: string };

const REASON_MAX_CHARS = 120;

export async function runUploadCheck(ctx: UploadCheckContext, staged: StagedUpload): Promise<void> {
  const facts = { ...ctx.facts, size: staged.size, sha256: staged.sha256 };
  const rules = ctx.rules.filter((r) => ruleMatches(r, CHECK_EVENT, { user: facts.user ?? null, groups: [...(facts.groups ?? [])], path: facts.path ?? null, toPath: null, size: staged.size, result: 'ok' }));
  if (rules.length === 0) return;
  const payload = buildPayload({ ...facts, event: 'upload' }, ctx.node);
  const checkPayload: EventPayload = { ...payload, event: CHECK_EVENT };
  for (const rule of rules) {
    for (const name of rule.actions) {
      const action = ctx.action(name);
      const started = Date.now();
      const verdict: Verdict = action === undefined ? { kind: 'undecided', why: `no action named "${name}"` } : await decide(action, checkPayload, staged, ctx.settings);
      const ms = Date.now() - started;
      ctx.log.info({ event: 'upload_check', check: rule.name, action: name, path: facts.path, verdict: verdict.kind, ms, ...(verdict.kind === 'accept' ? {} : { detail: verdict.kind === 'refuse' ? verdict.reason : verdict.why }) }, 'upload check');
      if (verdict.kind === 'accept') continue;
      if (verdict.kind === 'undecided' && ctx.settings.checkTimeoutResult === 'accept') {
        ctx.log.warn({ event: 'upload_check_skipped', check: rule.name, action: name, path: facts.path, why: verdict.why }, 'upload check did not decide; accepted as configured');
        continue;
      }
      const refusal = verdict.kind === 'refuse'
        ? { code: 550, reason: verdict.reason || 'refused by check', text: `Upload refused: ${verdict.reason || `refused by check ${rule.name}`}` }
        : { code: 451, reason: `check did not answer: ${verdict.why}`, text: 'Upload refused: the upload check did not answer; try again later' };
      await refuse(ctx, staged, payload, { check: rule.name, action: name, ...refusal });
    }
  }
}

async function decide(action: ActionSpec, payload: EventPayload, staged: StagedUpload, s: EventSettings): Promise<Verdict> {
  if (action.kind === 'command') {
    try {
      const r = await runCommand(action.command, payload, { timeoutMs: action.command.timeoutMs ?? s.checkTimeoutMs, maxOutputBytes: s.commandOutputMaxBytes, extra: { file: staged.path } });
      if (r.timedOut) return { kind: 'undecided', why: `timed out after ${action.command.timeoutMs ?? s.checkTimeoutMs} ms` };
      if (r.code === 0) return { kind: 'accept' };
      if (r.code === null) return { kind: 'undecided', why: `killed by ${r.signal}` };
      return { kind: 'refuse', reason: oneLine(r.stdout, REASON_MAX_CHARS) || oneLine(r.stderr, REASON_MAX_CHARS) || `exit code ${r.code}` };
    } catch (err) {
      return { kind: 'undecided', why: (err as Error).message };
    }
  }
  try {
    const res = await postWebhook({ spec: action.webhook, timeoutMs: action.webhook.timeoutMs ?? s.checkTimeoutMs, eventJson: JSON.stringify(payload), payload, file: { open: () => staged.open(), size: staged.size } });
    if (res.status >= 200 && res.status <= 299) return { kind: 'accept' };
    if (res.status >= 400 && res.status <= 499) return { kind: 'refuse', reason: oneLine(res.body, REASON_MAX_CHARS) || `HTTP ${res.status}` };
    return { kind: 'undecided', why: `HTTP ${res.status}` };
  } catch (err) {
    return { kind: 'undecided', why: (err as Error).message };
  }
}

async function refuse(ctx: UploadCheckContext, staged: StagedUpload, payload: EventPayload, r: { check: string; action: string; code: number; reason: string; text: string }): Promise<never> {
  let quarantine: string | null = null;
  if (ctx.quarantineDir !== null) {
    const name = `${payload.id}-${basename(payload.path ?? 'upload')}`;
    try {
      await mkdir(ctx.quarantineDir, { recursive: true, mode: 0o700 });
      const dest = join(ctx.quarantineDir, name);
      await staged.moveTo(dest);
      quarantine = dest;
      await writeFile(`${dest}.json`, JSON.stringify({ ...payload, event: 'upload_refused', result: 'refused', code: r.code, reason: r.reason, details: { check: r.check, action: r.action } }, null, 2) + '\n', { mode: 0o600 });
    } catch (err) {
      ctx.log.error({ err, event: 'quarantine_failed', path: payload.path }, 'refused upload could not be quarantined; it is deleted');
    }
  }
  const f = ctx.facts;
  ctx.audit('upload_refused', { sid: f.session, ip: f.ip, user: f.user, path: f.path, size: staged.size, sha256: staged.sha256, check: r.check, action: r.action, code: r.code, reason: r.reason, quarantine, eventId: payload.id });
  ctx.publish({ ...f, id: payload.id, event: 'upload_refused', storagePath: quarantine, size: staged.size, sha256: staged.sha256, result: 'refused', code: r.code, reason: r.reason, details: { check: r.check, action: r.action, quarantined: quarantine !== null } });
  throw new FtpError(r.code, r.text.replace(/[\r\n]/g, ' '), { reason: 'upload_check_refused' });
}
