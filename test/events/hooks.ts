import type { ActionSpec, RuleSpec, WebhookSpec } from '../../src/store/event-model.js';
import { putEventAction, putEventRule } from '../../src/store/event-repo.js';
import type { TestServer } from '../helpers/server.js';

// Event rules and actions for tests, put into the server's store as the admin API or `ftpsd apply` would, then read
// by the running server at once.

export function webhook(name: string, url: string, secret: string, extra: Partial<WebhookSpec> = {}): ActionSpec {
  return { name, description: '', kind: 'webhook', webhook: { url, secret, headers: {}, timeoutMs: null, ca: null, caFile: null, ...extra } };
}

export function command(name: string, argv: string[], extra: { env?: Record<string, string>; timeoutMs?: number } = {}): ActionSpec {
  return { name, description: '', kind: 'command', command: { argv, env: extra.env ?? {}, timeoutMs: extra.timeoutMs ?? null } };
}

export function rule(name: string, events: RuleSpec['events'], actions: string[], extra: Partial<RuleSpec> = {}): RuleSpec {
  return { name, description: '', enabled: true, events, users: [], groups: [], paths: [], minSize: null, maxSize: null, results: [], actions, ...extra };
}

export async function setHooks(t: TestServer, actions: ActionSpec[], rules: RuleSpec[]): Promise<void> {
  const now = Date.now();
  for (const a of actions) await putEventAction(t.server.store.db, a, now);
  for (const r of rules) await putEventRule(t.server.store.db, r, now);
  await t.server.events.refresh();
}
