import type { FastifyInstance } from 'fastify';
import { canonicalIp } from '../../defender/cidr.js';
import { DefenderError, type BanInfo, type Defender } from '../../defender/defender.js';
import { recordAdminChange, type AdminContext } from '../context.js';
import { ApiError, invalid, notFound } from '../errors.js';
import { banSchema, responses } from '../schemas.js';

// The defender's bans: list, add (its sessions close at once), remove. Shared with `ftpsd ban` and other nodes
// through the store.

const ipParam = { type: 'object', required: ['ip'], additionalProperties: false, properties: { ip: { type: 'string', minLength: 2, maxLength: 64 } } } as const;

export function banView(b: BanInfo): Record<string, unknown> {
  return { ip: b.ip, until: new Date(b.until).toISOString(), reason: b.reason, offences: b.offences };
}

function defenderOf(ctx: AdminContext): Defender {
  if (ctx.server.defender === null) throw new ApiError(409, 'unavailable', 'the defender is off (defender.enabled: false)');
  return ctx.server.defender;
}

export function bansRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/api/v1/bans', { config: { access: 'read' }, schema: { tags: ['bans'], summary: 'Active bans, soonest to end first', response: responses({ 200: { type: 'array', items: banSchema } }) } }, () =>
    (ctx.server.defender?.list() ?? []).map(banView),
  );

  app.post(
    '/api/v1/bans',
    {
      config: { access: 'manage' },
      schema: {
        tags: ['bans'],
        summary: "Ban an address; its open sessions close at once",
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['ip'],
          properties: { ip: { type: 'string', minLength: 2, maxLength: 64 }, minutes: { type: 'integer', minimum: 1, maximum: 525_600, default: 60 }, reason: { type: 'string', maxLength: 200, default: 'manual' } },
        },
        response: responses({ 201: banSchema }),
      },
    },
    async (request, reply) => {
      const body = request.body as { ip: string; minutes: number; reason: string };
      let ban: BanInfo;
      try {
        ban = defenderOf(ctx).ban(body.ip, body.minutes * 60_000, body.reason);
      } catch (err) {
        if (err instanceof DefenderError) throw invalid(err.message);
        throw err;
      }
      await recordAdminChange(ctx, request, { action: 'ban', kind: 'ban', name: ban.ip, after: banView(ban) });
      return reply.code(201).send(banView(ban));
    },
  );

  app.delete('/api/v1/bans/:ip', { config: { access: 'unban' }, schema: { tags: ['bans'], summary: 'Lift a ban (and forget the offences of the address)', params: ipParam, response: responses({ 200: banSchema }) } }, async (request) => {
    const { ip } = request.params as { ip: string };
    const defender = defenderOf(ctx);
    const addr = canonicalIp(ip);
    if (addr === null) throw invalid(`not an IP address: ${ip}`);
    const before = defender.list().find((b) => b.ip === addr);
    if (before === undefined) throw notFound(`ban of ${addr}`);
    defender.unban(addr);
    await recordAdminChange(ctx, request, { action: 'unban', kind: 'ban', name: before.ip, before: banView(before) });
    return banView(before);
  });
}
