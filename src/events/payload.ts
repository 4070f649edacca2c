import { randomUUID } from 'node:crypto';
import type { EventPayload, EventResult, EventType } from '../store/event-model.js';

// The one place a payload is put together: publishers give the facts they know, everything else is null, so every
// payload of version 1 has the same keys whichever part of the server published it.

export interface EventFacts {
  event: EventType;
  /** A deterministic id for an event several nodes may see (a ban, a store change); default: a random UUID. */
  id?: string;
  /** When it happened (epoch ms); default: now. */
  at?: number;
  session?: string | null;
  user?: string | null;
  groups?: readonly string[];
  ip?: string | null;
  client?: string | null;
  path?: string | null;
  toPath?: string | null;
  storagePath?: string | null;
  size?: number | null;
  bytes?: number | null;
  sha256?: string | null;
  tlsVersion?: string | null;
  tlsCipher?: string | null;
  resumed?: boolean | null;
  result?: EventResult;
  code?: number | null;
  reason?: string | null;
  details?: Record<string, unknown>;
}

export function buildPayload(f: EventFacts, node: string, now = Date.now()): EventPayload {
  return {
    v: 1,
    id: f.id ?? randomUUID(),
    event: f.event,
    time: new Date(f.at ?? now).toISOString(),
    node,
    session: f.session ?? null,
    user: f.user ?? null,
    groups: [...(f.groups ?? [])],
    ip: f.ip ?? null,
    client: f.client ?? null,
    path: f.path ?? null,
    toPath: f.toPath ?? null,
    storagePath: f.storagePath ?? null,
    size: f.size ?? null,
    bytes: f.bytes ?? null,
    sha256: f.sha256 ?? null,
    tlsVersion: f.tlsVersion ?? null,
    tlsCipher: f.tlsCipher ?? null,
    resumed: f.resumed ?? null,
    result: f.result ?? 'ok',
    code: f.code ?? null,
    reason: f.reason ?? null,
    details: f.details ?? {},
  };
}

/** FTPSD_STORAGE_PATH for storagePath: the environment variable a command action gets for a payload key. */
export function envName(key: string): string {
  return `FTPSD_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** A payload value as text for a command's argument or environment: lists comma-joined, objects as JSON, null empty. */
export function fieldText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.join(',');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
