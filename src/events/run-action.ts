import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { ActionSpec, EventPayload } from '../store/event-model.js';
import { runCommand } from './command-action.js';
import { postWebhook } from './webhook-action.js';

// One delivery attempt of an event to one action: resolves when the action took it (2xx, exit 0), throws with a
// short reason otherwise. Command output goes to the log either way.

export type EventSettings = Config['events'];

export async function runAction(action: ActionSpec, payload: EventPayload, settings: EventSettings, log: Logger): Promise<void> {
  if (action.kind === 'webhook') {
    const res = await postWebhook({ spec: action.webhook, timeoutMs: action.webhook.timeoutMs ?? settings.webhookTimeoutMs, eventJson: JSON.stringify(payload), payload });
    if (res.status < 200 || res.status > 299) throw new Error(`HTTP ${res.status}${res.body === '' ? '' : `: ${oneLine(res.body, 200)}`}`);
    return;
  }
  const r = await runCommand(action.command, payload, { timeoutMs: action.command.timeoutMs ?? settings.commandTimeoutMs, maxOutputBytes: settings.commandOutputMaxBytes });
  const fields = { event: 'event_command_output', action: action.name, eventId: payload.id, code: r.code, signal: r.signal, ms: r.ms, stdout: r.stdout, stderr: r.stderr };
  if (r.code === 0) log.info(fields, 'event command ran');
  else log.warn(fields, 'event command failed');
  if (r.timedOut) throw new Error(`timed out after ${action.command.timeoutMs ?? settings.commandTimeoutMs} ms`);
  if (r.code !== 0) throw new Error(r.code === null ? `killed by ${r.signal}` : `exit code ${r.code}${r.stderr === '' ? '' : `: ${oneLine(r.stderr, 200)}`}`);
}

/** The first line of a text, without control characters, at most `max` characters: safe for a log or a reply. */
export function oneLine(text: string, max: number): string {
  const line = text.split(/\r?\n/).find((l) => l.trim() !== '') ?? '';
  return [...line.replace(/[\u0000-\u001f\u007f-\u009f]/g, '').trim()].slice(0, max).join('');
}
