// Event hooks as plain records, the same whether they come from the store, from a partners file or from the admin
// API: actions (a webhook endpoint or a command) and rules (which events, filtered how, go to which actions), and the
// versioned payload every action receives.

/** Everything the server publishes. Names are part of the payload contract: add new ones, never rename. */
export const EVENT_TYPES = [
  'upload',
  'upload_refused',
  'upload_discarded',
  'download',
  'delete',
  'rename',
  'mkdir',
  'rmdir',
  'login',
  'login_failed',
  'user_disabled',
  'user_expired',
  'ban',
  'certificate_renewed',
  'certificate_renewal_failed',
  'quota_exceeded',
  'retention_delete',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/**
 * Not an event that is delivered later: a rule listing it is a pre-commit check. Its actions run synchronously on the
 * complete bytes of an upload before it is committed, and any of them can refuse the upload.
 */
export const CHECK_EVENT = 'upload_check';

/** What a rule may list under `events`. */
export const RULE_EVENTS = [...EVENT_TYPES, CHECK_EVENT] as const;
export type RuleEvent = (typeof RULE_EVENTS)[number];

/** Outcomes a rule may filter on (`results`). */
export const EVENT_RESULTS = ['ok', 'refused', 'aborted', 'failed'] as const;
export type EventResult = (typeof EVENT_RESULTS)[number];

/**
 * Version 1 of the payload. Every key is always present (null when it does not apply), so receivers can rely on the
 * shape; a change that would break a receiver gets a new `v`.
 */
export interface EventPayloadV1 {
  v: 1;
  /** Unique per event; the idempotency key (a redelivery carries the same id). */
  id: string;
  /** What happened; `upload_check` only in the payload a pre-commit check receives. */
  event: RuleEvent;
  /** ISO 8601, when it happened. */
  time: string;
  /** The server node that saw it (events.node, else the host name). */
  node: string;
  session: string | null;
  user: string | null;
  groups: string[];
  ip: string | null;
  /** Client software named with CLNT. */
  client: string | null;
  /** Virtual path as the client sees it; for a rename, where it came from. */
  path: string | null;
  /** For a rename: the new virtual path. */
  toPath: string | null;
  /** Where the file lies in storage (local path) once committed. */
  storagePath: string | null;
  /** Size of the stored file (uploads) or of the file sent (downloads). */
  size: number | null;
  /** Bytes moved on the data connection. */
  bytes: number | null;
  sha256: string | null;
  tlsVersion: string | null;
  tlsCipher: string | null;
  /** The data connection resumed the control connection's TLS session. */
  resumed: boolean | null;
  result: EventResult;
  /** FTP reply code the client got, when there was one. */
  code: number | null;
  /** Why, for refusals and failures (short, no secrets). */
  reason: string | null;
  /** Event-specific facts (ban expiry, certificate serial, retention age). */
  details: Record<string, unknown>;
}
export type EventPayload = EventPayloadV1;

export interface WebhookSpec {
  url: string;
  /** HMAC-SHA256 key of the Ftpsd-Signature header; empty: unsigned (not recommended). */
  secret: string;
  headers: Record<string, string>;
  /** null: events.webhookTimeoutMs. */
  timeoutMs: number | null;
  /** Extra CA certificates (PEM) trusted for an https:// URL, in the store itself so every node has them. */
  ca: string | null;
  /** Or a CA file on each node. */
  caFile: string | null;
}

export interface CommandSpec {
  /** Program and arguments; `{field}` placeholders are replaced by payload fields. Never run through a shell. */
  argv: string[];
  /** Extra environment variables (besides the FTPSD_* ones). */
  env: Record<string, string>;
  /** null: events.commandTimeoutMs. */
  timeoutMs: number | null;
}

export type ActionSpec =
  | { name: string; description: string; kind: 'webhook'; webhook: WebhookSpec }
  | { name: string; description: string; kind: 'command'; command: CommandSpec };

export interface RuleSpec {
  name: string;
  description: string;
  enabled: boolean;
  events: RuleEvent[];
  /** Empty: any user. */
  users: string[];
  /** Empty: any group; otherwise the user must be in one of them. */
  groups: string[];
  /** Globs on the virtual path (`*` within a segment, `**` across); empty: any path. */
  paths: string[];
  minSize: number | null;
  maxSize: number | null;
  /** Empty: any result. */
  results: EventResult[];
  /** Action names, run in this order (checks) or delivered each on its own (events). */
  actions: string[];
}

export interface EventHooks {
  actions: Record<string, ActionSpec>;
  rules: Record<string, RuleSpec>;
}

export function emptyEventHooks(): EventHooks {
  return { actions: {}, rules: {} };
}

/** An action as the change log and listings show it: secret, header and environment values hidden (names kept). */
export function actionWithoutSecrets(a: ActionSpec): Record<string, unknown> {
  if (a.kind === 'command') {
    const { env, ...rest } = a.command;
    return { ...a, command: { ...rest, env: Object.keys(env) } };
  }
  const { secret, headers, ca, ...rest } = a.webhook;
  return { ...a, webhook: { ...rest, secretSet: secret !== '', headers: Object.keys(headers), caSet: ca !== null } };
}
