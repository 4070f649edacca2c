import type { FastifyInstance } from 'fastify';
import { ConfigError } from '../../config/load.js';
import { applyPartnerFile, describeChange } from '../../partners/apply.js';
import { formatPartnerFile, parsePartnerFile } from '../../partners/partner-file.js';
import { loadPartners } from '../../store/partner-repo.js';
import { actorOf, type AdminContext } from '../context.js';
import { invalid } from '../errors.js';
import { createPartner, type NewPartnerInput } from '../services/new-partner.js';
import { bool, folderOut, responses, str, strList, userOut } from '../schemas.js';

// Partner-level operations: the "new partner" flow (a user with its inbox and outbox), and the whole partner model
// as a partners file (export, and apply with a dry run), as `ftpsd export` and `ftpsd apply` do.

export function partnersRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.post(
    '/api/v1/partners',
    {
      config: { access: 'manage' },
      schema: {
        tags: ['partners'],
        summary: 'New partner: a user with an upload-only /inbox and a download-only /outbox folder of its own; can log in at once',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 64 },
            password: { type: 'string', minLength: 8, maxLength: 1024, description: 'Absent: one is generated and returned once.' },
            basePath: { type: 'string', minLength: 1, maxLength: 1024, description: 'Where inbox/ and outbox/ are created; default data/exchange/NAME.' },
            description: { type: 'string', maxLength: 1024 },
            allowedNetworks: { type: 'array', items: str, maxItems: 1000 },
            outboxRetentionDays: { type: 'number', minimum: 0, description: 'Outbox files are deleted this long after their first download.' },
            inboxQuotaBytes: { type: 'integer', minimum: 0 },
          },
        },
        response: responses({ 201: { type: 'object', properties: { user: userOut, folders: { type: 'array', items: folderOut }, password: { type: ['string', 'null'] } } } }),
      },
    },
    async (request, reply) => reply.code(201).send(await createPartner(ctx, request, request.body as NewPartnerInput)),
  );

  app.get(
    '/api/v1/partners/export',
    { config: { access: 'manage' }, schema: { tags: ['partners'], summary: 'The partner model as a partners file (YAML, with password hashes)', response: responses({ 200: { type: 'string', description: 'YAML' } }) } },
    async (_request, reply) => reply.type('application/yaml; charset=utf-8').send(formatPartnerFile(await loadPartners(ctx.server.store.db))),
  );

  app.post(
    '/api/v1/partners/apply',
    {
      config: { access: 'manage' },
      schema: {
        tags: ['partners'],
        summary: 'Make the store match a partners file, all or nothing (dryRun: only list the changes)',
        body: { type: 'object', additionalProperties: false, required: ['file'], properties: { file: { type: 'string', description: 'The partners file (YAML).' }, dryRun: bool } },
        response: responses({ 200: { type: 'object', properties: { dryRun: bool, changes: strList } } }),
      },
    },
    async (request) => {
      const body = request.body as { file: string; dryRun?: boolean };
      let file;
      try {
        file = parsePartnerFile(body.file, 'file');
      } catch (err) {
        if (err instanceof ConfigError) throw invalid(err.message.split(":\n")[0]!, [...err.problems]);
        throw err;
      }
      const dryRun = body.dryRun === true;
      const plan = await applyPartnerFile(ctx.server.store, file, { actor: actorOf(request), dryRun, ip: request.ip });
      if (!dryRun) await ctx.server.syncStore();
      return { dryRun, changes: plan.map(describeChange) };
    },
  );
}
