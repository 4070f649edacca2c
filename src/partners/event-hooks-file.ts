import { z } from 'zod';
import { EVENT_RESULTS, RULE_EVENTS, type ActionSpec, type EventHooks, type RuleSpec } from '../store/event-model.js';

// The `events:` section of the partners file: named actions (a webhook or a command) and rules that send events to
// them, kept as code beside the users and folders they are about. See docs/events.md.

const NAME = /^[A-Za-z0-9._@-]{1,64}$/;
/** Placeholders a command's argv may use: the payload's keys, and `file` (the staged upload, for checks). */
export const ARGV_FIELDS = ['v', 'id', 'event', 'time', 'node', 'session', 'user', 'groups', 'ip', 'client', 'path', 'toPath', 'storagePath', 'size', 'bytes', 'sha256', 'tlsVersion', 'tlsCipher', 'resumed', 'result', 'code', 'reason', 'details', 'file'];
const timeout = z.number().int().positive().optional();

const webhookSchema = z
  .object({
    url: z.string().refine((u) => /^https?:\/\/[^/]/.test(u), 'must be an http:// or https:// URL'),
    secret: z.string().default(''),
    headers: z.record(z.string(), z.string()).default({}),
    timeoutMs: timeout,
    ca: z.string().includes('-----BEGIN CERTIFICATE-----', { message: 'must be PEM certificates' }).optional(),
    caFile: z.string().min(1).optional(),
  })
  .strict();

const commandSchema = z
  .object({
    argv: z
      .array(z.string())
      .min(1, 'needs at least the program')
      .superRefine((argv, ctx) => {
        for (const arg of argv) {
          for (const m of arg.matchAll(/\{([A-Za-z][A-Za-z0-9]*)\}/g)) {
            if (!ARGV_FIELDS.includes(m[1]!)) ctx.addIssue({ code: 'custom', message: `unknown placeholder {${m[1]}} (known: ${ARGV_FIELDS.join(', ')})` });
          }
        }
      }),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name'), z.string()).default({}),
    timeoutMs: timeout,
  })
  .strict();

const actionSchema = z
  .object({ description: z.string().default(''), webhook: webhookSchema.optional(), command: commandSchema.optional() })
  .strict()
  .refine((a) => (a.webhook === undefined) !== (a.command === undefined), 'needs exactly one of webhook or command');

const size = z.number().int().nonnegative().optional();
const ruleSchema = z
  .object({
    description: z.string().default(''),
    enabled: z.boolean().default(true),
    events: z.array(z.enum(RULE_EVENTS)).min(1, 'needs at least one event'),
    users: z.array(z.string()).default([]),
    groups: z.array(z.string()).default([]),
    paths: z.array(z.string().startsWith('/', 'must be an absolute virtual path glob such as /inbox/**')).default([]),
    minSize: size,
    maxSize: size,
    results: z.array(z.enum(EVENT_RESULTS)).default([]),
    actions: z.array(z.string()).min(1, 'needs at least one action'),
  })
  .strict();

export const eventsSectionSchema = z
  .object({
    actions: z.record(z.string().regex(NAME, 'action names use letters, digits and . _ @ -'), actionSchema).default({}),
    rules: z.record(z.string().regex(NAME, 'rule names use letters, digits and . _ @ -'), ruleSchema).default({}),
  })
  .strict();

export type EventsSection = z.infer<typeof eventsSectionSchema>;

export function hooksFromSection(section: EventsSection): EventHooks {
  const hooks: EventHooks = { actions: {}, rules: {} };
  for (const [name, a] of Object.entries(section.actions)) {
    hooks.actions[name] = a.webhook !== undefined
      ? { name, description: a.description, kind: 'webhook', webhook: { url: a.webhook.url, secret: a.webhook.secret, headers: a.webhook.headers, timeoutMs: a.webhook.timeoutMs ?? null, ca: a.webhook.ca ?? null, caFile: a.webhook.caFile ?? null } }
      : { name, description: a.description, kind: 'command', command: { argv: a.command!.argv, env: a.command!.env, timeoutMs: a.command!.timeoutMs ?? null } };
  }
  for (const [name, r] of Object.entries(section.rules)) {
    hooks.rules[name] = { name, description: r.description, enabled: r.enabled, events: r.events, users: r.users, groups: r.groups, paths: r.paths, minSize: r.minSize ?? null, maxSize: r.maxSize ?? null, results: r.results, actions: r.actions };
  }
  return hooks;
}

/** Names a rule uses that the file does not define. */
export function checkHooks(hooks: EventHooks, known: { users: ReadonlySet<string>; groups: ReadonlySet<string> }): string[] {
  const problems: string[] = [];
  for (const r of Object.values(hooks.rules)) {
    r.actions.forEach((a, i) => {
      if (hooks.actions[a] === undefined) problems.push(`events.rules.${r.name}.actions.${i}: unknown action "${a}" (not under events.actions:)`);
    });
    r.users.forEach((u, i) => {
      if (!known.users.has(u)) problems.push(`events.rules.${r.name}.users.${i}: unknown user "${u}" (not under users:)`);
    });
    r.groups.forEach((g, i) => {
      if (!known.groups.has(g)) problems.push(`events.rules.${r.name}.groups.${i}: unknown group "${g}" (not under groups:)`);
    });
    if (r.minSize !== null && r.maxSize !== null && r.minSize > r.maxSize) problems.push(`events.rules.${r.name}.maxSize: must not be below minSize`);
  }
  return problems;
}

/** The `events:` section of a partners file, or undefined when there are no hooks. */
export function formatHooks(hooks: EventHooks): Record<string, unknown> | undefined {
  const actions = Object.values(hooks.actions).sort(byName);
  const rules = Object.values(hooks.rules).sort(byName);
  if (actions.length === 0 && rules.length === 0) return undefined;
  const out: Record<string, unknown> = {};
  if (actions.length > 0) out.actions = Object.fromEntries(actions.map((a) => [a.name, actionOut(a)]));
  if (rules.length > 0) out.rules = Object.fromEntries(rules.map((r) => [r.name, ruleOut(r)]));
  return out;
}

function actionOut(a: ActionSpec): Record<string, unknown> {
  const out: Record<string, unknown> = a.description === '' ? {} : { description: a.description };
  if (a.kind === 'webhook') {
    const w = a.webhook;
    out.webhook = { url: w.url, ...(w.secret === '' ? {} : { secret: w.secret }), ...(Object.keys(w.headers).length === 0 ? {} : { headers: w.headers }), ...(w.timeoutMs === null ? {} : { timeoutMs: w.timeoutMs }), ...(w.ca === null ? {} : { ca: w.ca }), ...(w.caFile === null ? {} : { caFile: w.caFile }) };
  } else {
    const c = a.command;
    out.command = { argv: c.argv, ...(Object.keys(c.env).length === 0 ? {} : { env: c.env }), ...(c.timeoutMs === null ? {} : { timeoutMs: c.timeoutMs }) };
  }
  return out;
}

function ruleOut(r: RuleSpec): Record<string, unknown> {
  return {
    ...(r.description === '' ? {} : { description: r.description }),
    ...(r.enabled ? {} : { enabled: false }),
    events: r.events,
    ...(r.users.length === 0 ? {} : { users: r.users }),
    ...(r.groups.length === 0 ? {} : { groups: r.groups }),
    ...(r.paths.length === 0 ? {} : { paths: r.paths }),
    ...(r.minSize === null ? {} : { minSize: r.minSize }),
    ...(r.maxSize === null ? {} : { maxSize: r.maxSize }),
    ...(r.results.length === 0 ? {} : { results: r.results }),
    actions: r.actions,
  };
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
