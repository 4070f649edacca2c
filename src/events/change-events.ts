import type { LoggedChange } from '../store/change-log.js';
import type { EventFacts } from './payload.js';

// Events that come from the store's change log rather than from a session: a user disabled (by `ftpsd user
// disable`, a partners file, the admin API or the idle-account job), a user whose expiry passed, a file deleted by
// retention (by the server's job or `ftpsd retention run`). Every node reads the change log; the event id is the
// change's, so however many nodes publish it, the store keeps one event.

export function eventsFromChanges(changes: readonly LoggedChange[]): EventFacts[] {
  const out: EventFacts[] = [];
  for (const c of changes) {
    const before = (c.before ?? {}) as Record<string, unknown>;
    const after = (c.after ?? {}) as Record<string, unknown>;
    const base = { id: `change-${c.id}`, at: c.at, details: { actor: c.actor, changeId: c.id } };
    if (c.entityKind === 'user' && c.action === 'expire') {
      out.push({ ...base, event: 'user_expired', user: c.entityName, groups: strings(after.groups), reason: 'account expired', details: { ...base.details, expiresAt: after.expiresAt ?? null } });
    } else if (c.entityKind === 'user' && after.disabled === true && before.disabled !== true && c.action !== 'create') {
      out.push({ ...base, event: 'user_disabled', user: c.entityName, groups: strings(after.groups), reason: typeof after.reason === 'string' ? after.reason : c.action });
    } else if (c.entityKind === 'file' && c.action === 'retention_delete') {
      out.push({
        ...base,
        event: 'retention_delete',
        storagePath: c.entityName,
        size: typeof before.size === 'number' ? before.size : null,
        reason: `retention: ${String(before.ageDays ?? '?')} days since ${String(before.since ?? 'modified')}`,
        details: { ...base.details, folder: before.folder ?? null, scope: before.scope ?? null, ageDays: before.ageDays ?? null, since: before.since ?? null },
      });
    }
  }
  return out;
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}
