import type { FastifyInstance, FastifyRequest } from 'fastify';
import { execute, type PlannedChange } from '../../partners/apply.js';
import { checkHooks, eventsSectionSchema, hooksFromSection } from '../../partners/event-hooks-file.js';
import { actionWithoutSecrets, EVENT_RESULTS, RULE_EVENTS, type ActionSpec, type RuleSpec } from '../../store/event-model.js';
import { countDeliveries, getEventPayload, listDeliveries, loadEventHooks, retryDeliveries, type DeliveryRecord, type DeliveryState } from '../../store/event-repo.js';
import { loadPartners } from '../../store/partner-repo.js';
import { actorOf, recordAdminChange, type AdminContext } from '../context.js';
import { conflict, invalid, notFound } from '../errors.js';
import { bool, int, nameParam, nullableInt, nullableStr, okSchema, responses, str, strList } from '../schemas.js';

// Event hooks: actions (a webhook or a command), rules (which events go to which actions) and the delivery queue.
// Actions and rules are checked by the partners file's own rules (partners/event-hooks-file.ts) and written the way
// `ftpsd apply` writes them (partners/apply.ts): store and change-log record in one transaction, so running servers
// re-read the rules at once and the change is audited without secrets. Secrets (a webhook's secret, header values,
// CA, a command's environment values) are accepted on write and never returned; a write that leaves one out keeps
// the current value, so what a GET shows can be edited and sent back without losing them.

const NAME_PATTERN = '^[A-Za-z0-9._@-]{1,64}$';
const timeoutMs = { type: 'integer', minimum: 1, description: 'Absent: the events.*TimeoutMs default.' } as const;

const webhookIn = {
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url: { type: 'string', pattern: '^https?://[^/]', maxLength: 2048, description: 'http:// or https:// endpoint.' },
    secret: { type: 'string', maxLength: 1024, description: 'HMAC-SHA256 key of Ftpsd-Signature; never returned. Absent on an update: kept; "": unsigned.' },
    headers: { type: 'object', additionalProperties: { type: 'string', maxLength: 4096 }, description: 'Extra request headers; values never returned. Absent on an update: kept.' },
    timeoutMs,
    ca: { type: 'string', maxLength: 65_536, description: 'Extra CA certificates (PEM) for an https:// URL. Absent on an update: kept.' },
    caFile: { type: 'string', minLength: 1, maxLength: 4096, description: 'Or a CA file on each node.' },
  },
} as const;

const commandIn = {
  type: 'object',
  additionalProperties: false,
  required: ['argv'],
  properties: {
    argv: { type: 'array', minItems: 1, items: { type: 'string', maxLength: 4096 }, description: 'Program and arguments, never run through a shell; {field} placeholders are payload fields.' },
    env: { type: 'object', additionalProperties: { type: 'string', maxLength: 4096 }, description: 'Extra environment variables; values never returned. Absent on an update: kept.' },
    timeoutMs,
  },
} as const;

const actionProperties = { description: { type: 'string', maxLength: 1000 }, webhook: webhookIn, command: commandIn } as const;
const actionBody = { type: 'object', additionalProperties: false, description: 'Exactly one of webhook or command.', properties: actionProperties } as const;
const actionCreateBody = { type: 'object', additionalProperties: false, required: ['name'], description: 'Exactly one of webhook or command.', properties: { name: { type: 'string', pattern: NAME_PATTERN }, ...actionProperties } } as const;

const actionOut = {
  type: 'object',
  properties: {
    name: str,
    description: str,
    kind: { type: 'string', enum: ['webhook', 'command'] },
    webhook: { type: 'object', properties: { url: str, secretSet: bool, headers: { ...strList, description: 'Header names; values are not shown.' }, timeoutMs: nullableInt, caSet: bool, caFile: nullableStr } },
    command: { type: 'object', properties: { argv: strList, env: { ...strList, description: 'Variable names; values are not shown.' }, timeoutMs: nullableInt } },
  },
} as const;

const ruleProperties = {
  description: { type: 'string', maxLength: 1000 },
  enabled: { type: 'boolean', description: 'Default true.' },
  events: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', enum: [...RULE_EVENTS] }, description: 'upload_check makes the rule a pre-commit check.' },
  users: { ...strList, description: 'Empty: any user.' },
  groups: { ...strList, description: 'Empty: any group.' },
  paths: { type: 'array', items: { type: 'string', pattern: '^/', maxLength: 1024 }, description: 'Virtual path globs (* within a segment, ** across); empty: any path.' },
  minSize: { type: 'integer', minimum: 0 },
  maxSize: { type: 'integer', minimum: 0 },
  results: { type: 'array', items: { type: 'string', enum: [...EVENT_RESULTS] }, description: 'Empty: any result.' },
  actions: { type: 'array', minItems: 1, items: str, description: 'Action names.' },
} as const;
const ruleBody = { type: 'object', additionalProperties: false, required: ['events', 'actions'], properties: ruleProperties } as const;
const ruleOut = { type: 'object', properties: { name: str, ...ruleProperties, minSize: nullableInt, maxSize: nullableInt } } as const;

const deliveryState = { type: 'string', enum: ['pending', 'failed', 'delivered'] } as const;
const deliveryOut = {
  type: 'object',
  properties: {
    id: int,
    eventId: str,
    eventType: str,
    eventAt: str,
    action: str,
    rule: str,
    state: deliveryState,
    attempts: int,
    nextAt: str,
    leaseOwner: nullableStr,
    lastError: nullableStr,
    createdAt: str,
    deliveredAt: nullableStr,
  },
} as const;
const idParam = { type: 'object', required: ['id'], additionalProperties: false, properties: { id: { type: 'string', pattern: '^[1-9][0-9]{0,14}$', description: 'Delivery id.' } } } as const;
const countsOut = { type: 'object', properties: { pending: int, failed: int, delivered: int, rules: int, actions: int } } as const;

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function deliveryView(d: DeliveryRecord): Record<string, unknown> {
  return {
    id: d.id,
    eventId: d.eventId,
    eventType: d.eventType,
    eventAt: iso(d.eventAt),
    action: d.action,
    rule: d.rule,
    state: d.state,
    attempts: d.attempts,
    nextAt: iso(d.nextAt),
    leaseOwner: d.leaseOwner,
    lastError: d.lastError,
    createdAt: iso(d.createdAt),
    deliveredAt: iso(d.deliveredAt),
  };
}

type Raw = Record<string, unknown>;

/** The partners file's schema applied to one action or rule; its problems named as the request's fields. */
function parseHook(kind: 'actions' | 'rules', name: string, raw: Raw): ActionSpec | RuleSpec {
  const r = eventsSectionSchema.safeParse({ [kind]: { [name]: raw } });
  if (!r.success) {
    const problems = r.error.issues.map((i) => `body${i.path.slice(2).map((p) => `.${String(p)}`).join('')}: ${i.message}`);
    throw invalid(`invalid body: ${problems[0]}`, problems);
  }
  const hooks = hooksFromSection(r.data);
  return kind === 'actions' ? hooks.actions[name]! : hooks.rules[name]!;
}

/** What an update leaves out of a secret keeps its current value. */
function keepSecrets(raw: Raw, before: ActionSpec | undefined): Raw {
  if (before === undefined) return raw;
  if (before.kind === 'webhook' && raw.webhook !== undefined) {
    const w = before.webhook;
    return { ...raw, webhook: { secret: w.secret, headers: w.headers, ...(w.ca === null ? {} : { ca: w.ca }), ...(raw.webhook as Raw) } };
  }
  if (before.kind === 'command' && raw.command !== undefined) return { ...raw, command: { env: before.command.env, ...(raw.command as Raw) } };
  return raw;
}

async function changeHook(ctx: AdminContext, request: FastifyRequest, change: Omit<PlannedChange, 'keys'>): Promise<void> {
  await ctx.server.store.db.transaction().execute((trx) => execute(trx, [{ ...change, keys: [] }], actorOf(request), Date.now(), request.ip));
  await ctx.server.syncStore();
}

export function eventsRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const db = () => ctx.server.store.db;
  const tags = ['events'];

  // ---- actions ---------------------------------------------------------------------------------------------------

  app.get('/api/v1/events/actions', { config: { access: 'read' }, schema: { tags, summary: 'List event actions (secrets not shown)', response: responses({ 200: { type: 'array', items: actionOut } }) } }, async () =>
    Object.values((await loadEventHooks(db())).actions).map(actionWithoutSecrets),
  );

  app.get('/api/v1/events/actions/:name', { config: { access: 'read' }, schema: { tags, summary: 'One event action (secrets not shown)', params: nameParam, response: responses({ 200: actionOut }) } }, async (request) => {
    const { name } = request.params as { name: string };
    const a = (await loadEventHooks(db())).actions[name];
    if (a === undefined) throw notFound(`event action "${name}"`);
    return actionWithoutSecrets(a);
  });

  const writeAction = async (request: FastifyRequest, name: string, raw: Raw, mode: 'create' | 'update'): Promise<Record<string, unknown>> => {
    const hooks = await loadEventHooks(db());
    const before = hooks.actions[name];
    if (mode === 'create' && before !== undefined) throw conflict(`event action "${name}" already exists`);
    if (mode === 'update' && before === undefined) throw notFound(`event action "${name}"`);
    const after = parseHook('actions', name, keepSecrets(raw, before)) as ActionSpec;
    await changeHook(ctx, request, { action: mode, kind: 'event_action', name, ...(before === undefined ? {} : { before }), after });
    return actionWithoutSecrets(after);
  };

  app.post(
    '/api/v1/events/actions',
    { config: { access: 'manage' }, schema: { tags, summary: 'Create an event action: a webhook or a command', body: actionCreateBody, response: responses({ 201: actionOut }) } },
    async (request, reply) => {
      const { name, ...raw } = request.body as Raw & { name: string };
      return reply.code(201).send(await writeAction(request, name, raw, 'create'));
    },
  );

  app.put(
    '/api/v1/events/actions/:name',
    { config: { access: 'manage' }, schema: { tags, summary: 'Replace an event action (secrets left out are kept)', params: nameParam, body: actionBody, response: responses({ 200: actionOut }) } },
    (request) => writeAction(request, (request.params as { name: string }).name, request.body as Raw, 'update'),
  );

  app.delete('/api/v1/events/actions/:name', { config: { access: 'manage' }, schema: { tags, summary: 'Delete an event action no rule uses', params: nameParam, response: responses({ 200: okSchema }) } }, async (request) => {
    const { name } = request.params as { name: string };
    const hooks = await loadEventHooks(db());
    const before = hooks.actions[name];
    if (before === undefined) throw notFound(`event action "${name}"`);
    const users = Object.values(hooks.rules).filter((r) => r.actions.includes(name)).map((r) => r.name);
    if (users.length > 0) throw conflict(`event action "${name}" is used by rule ${users.map((r) => `"${r}"`).join(', ')}; change or delete the rule first`);
    await changeHook(ctx, request, { action: 'delete', kind: 'event_action', name, before });
    return { ok: true };
  });

  // ---- rules -----------------------------------------------------------------------------------------------------

  app.get('/api/v1/events/rules', { config: { access: 'read' }, schema: { tags, summary: 'List event rules', response: responses({ 200: { type: 'array', items: ruleOut } }) } }, async () => Object.values((await loadEventHooks(db())).rules));

  app.get('/api/v1/events/rules/:name', { config: { access: 'read' }, schema: { tags, summary: 'One event rule', params: nameParam, response: responses({ 200: ruleOut }) } }, async (request) => {
    const { name } = request.params as { name: string };
    const r = (await loadEventHooks(db())).rules[name];
    if (r === undefined) throw notFound(`event rule "${name}"`);
    return r;
  });

  app.put(
    '/api/v1/events/rules/:name',
    {
      config: { access: 'manage' },
      schema: { tags, summary: 'Create or replace an event rule; running servers apply it at once', params: nameParam, body: ruleBody, response: responses({ 200: ruleOut, 201: ruleOut }) },
    },
    async (request, reply) => {
      const { name } = request.params as { name: string };
      if (!new RegExp(NAME_PATTERN).test(name)) throw invalid(`rule name "${name}": use letters, digits and . _ @ - (at most 64)`);
      const after = parseHook('rules', name, request.body as Raw) as RuleSpec;
      const [hooks, partners] = await Promise.all([loadEventHooks(db()), loadPartners(db())]);
      const before = hooks.rules[name];
      const problems = checkHooks({ actions: hooks.actions, rules: { [name]: after } }, { users: new Set(Object.keys(partners.users)), groups: new Set(Object.keys(partners.groups)) }).map((p) =>
        p.replace(`events.rules.${name}.`, 'body.').replace(/ \(not under [a-z.]+:\)$/, ''),
      );
      if (problems.length > 0) throw invalid(`invalid body: ${problems[0]}`, problems);
      await changeHook(ctx, request, { action: before === undefined ? 'create' : 'update', kind: 'event_rule', name, ...(before === undefined ? {} : { before }), after });
      return reply.code(before === undefined ? 201 : 200).send(after);
    },
  );

  app.delete('/api/v1/events/rules/:name', { config: { access: 'manage' }, schema: { tags, summary: 'Delete an event rule (queued deliveries still go out)', params: nameParam, response: responses({ 200: okSchema }) } }, async (request) => {
    const { name } = request.params as { name: string };
    const before = (await loadEventHooks(db())).rules[name];
    if (before === undefined) throw notFound(`event rule "${name}"`);
    await changeHook(ctx, request, { action: 'delete', kind: 'event_rule', name, before });
    return { ok: true };
  });

  // ---- deliveries ------------------------------------------------------------------------------------------------

  app.get(
    '/api/v1/events/deliveries',
    {
      config: { access: 'read' },
      schema: {
        tags,
        summary: 'Deliveries, newest first, a page at a time',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            state: deliveryState,
            eventId: { type: 'string', minLength: 1, maxLength: 200 },
            limit: { type: 'string', pattern: '^[0-9]{1,4}$', description: 'At most this many (default 50, at most 500).' },
            before: { type: 'string', pattern: '^[0-9]{1,15}$', description: 'Only deliveries with a lower id: the previous page\'s "next".' },
          },
        },
        response: responses({ 200: { type: 'object', properties: { deliveries: { type: 'array', items: deliveryOut }, next: { ...nullableInt, description: 'Pass as "before" for the next page; null: no more.' } } } }),
      },
    },
    async (request) => {
      const q = request.query as { state?: DeliveryState; eventId?: string; limit?: string; before?: string };
      const limit = q.limit === undefined ? 50 : Number(q.limit);
      if (limit < 1 || limit > 500) throw invalid('querystring.limit: must be between 1 and 500');
      const rows = await listDeliveries(db(), { limit: limit + 1, ...(q.state === undefined ? {} : { state: q.state }), ...(q.eventId === undefined ? {} : { eventId: q.eventId }), ...(q.before === undefined ? {} : { beforeId: Number(q.before) }) });
      const page = rows.slice(0, limit);
      return { deliveries: page.map(deliveryView), next: rows.length > limit ? page[page.length - 1]!.id : null };
    },
  );

  app.get(
    '/api/v1/events/deliveries/:id',
    {
      config: { access: 'read' },
      schema: { tags, summary: 'One delivery with the payload its action receives', params: idParam, response: responses({ 200: { type: 'object', properties: { ...deliveryOut.properties, payload: { type: 'object', additionalProperties: true } } } }) },
    },
    async (request) => {
      const id = Number((request.params as { id: string }).id);
      const d = await findDelivery(ctx, id);
      if (d === null) throw notFound(`delivery ${id}`);
      return { ...deliveryView(d), payload: (await getEventPayload(db(), d.eventId)) ?? {} };
    },
  );

  app.post(
    '/api/v1/events/deliveries/retry',
    {
      config: { access: 'retry' },
      schema: {
        tags,
        summary: 'Send failed deliveries again from now with a fresh attempt count: one delivery, or all of an event',
        body: {
          type: 'object',
          additionalProperties: false,
          description: 'Exactly one of id or eventId.',
          properties: { id: { type: 'integer', minimum: 1, description: 'A delivery id.' }, eventId: { type: 'string', minLength: 1, maxLength: 200, description: 'All failed deliveries of this event.' } },
        },
        response: responses({ 200: { type: 'object', properties: { retried: int } } }),
      },
    },
    async (request) => {
      const body = request.body as { id?: number; eventId?: string };
      if ((body.id === undefined) === (body.eventId === undefined)) throw invalid('invalid body: give exactly one of id or eventId', ['body: give exactly one of id or eventId']);
      const target = body.id ?? body.eventId!;
      const existing = typeof target === 'number' ? await findDelivery(ctx, target) : ((await listDeliveries(db(), { eventId: target, limit: 1 }))[0] ?? null);
      if (existing === null) throw notFound(typeof target === 'number' ? `delivery ${target}` : `event ${target}`);
      const retried = await retryDeliveries(db(), target, Date.now());
      if (retried === 0) throw conflict(typeof target === 'number' ? `delivery ${target} has not failed (it is ${existing.state})` : `event ${target} has no failed delivery`);
      await recordAdminChange(ctx, request, { action: 'retry', kind: 'event_delivery', name: String(target), after: { retried } });
      return { retried };
    },
  );

  app.get('/api/v1/events/counts', { config: { access: 'read' }, schema: { tags, summary: 'Deliveries by state, rules and actions: for the dashboard', response: responses({ 200: countsOut }) } }, async () => {
    const [counts, hooks] = await Promise.all([countDeliveries(db()), loadEventHooks(db())]);
    return { ...counts, rules: Object.keys(hooks.rules).length, actions: Object.keys(hooks.actions).length };
  });
}

async function findDelivery(ctx: AdminContext, id: number): Promise<DeliveryRecord | null> {
  const [d] = await listDeliveries(ctx.server.store.db, { beforeId: id + 1, limit: 1 });
  return d !== undefined && d.id === id ? d : null;
}
