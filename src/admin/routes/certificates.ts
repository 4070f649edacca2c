import type { FastifyInstance } from 'fastify';
import { describeCertificate, type InstalledCertificate } from '../../tls/cert-store.js';
import { ensureSelfSignedCertificate } from '../../tls/self-signed.js';
import { recordAdminChange, type AdminContext } from '../context.js';
import { ApiError } from '../errors.js';
import { bool, certificateSchema, responses, str } from '../schemas.js';

// The certificate FTPS and this listener present: where it comes from, names, issuer, validity; ACME's renewal state;
// and a renewal now. Whatever is installed is used by new FTPS sessions and new admin connections at once.

const acmeSchema = {
  type: ['object', 'null'],
  properties: { phase: str, renewAt: { type: ['string', 'null'] }, renewing: bool, consecutiveFailures: { type: 'integer' }, lastError: { type: ['string', 'null'] }, nextCheckAt: { type: ['string', 'null'] } },
} as const;
const statusSchema = { type: 'object', properties: { certificate: certificateSchema, acme: acmeSchema } } as const;

export function certificateView(c: InstalledCertificate): Record<string, unknown> {
  return { source: c.source, ...describeCertificate(c.leaf), installedAt: c.installedAt.toISOString() };
}

export function certificatesRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const status = () => {
    const acme = ctx.server.acme?.status() ?? null;
    return { certificate: certificateView(ctx.server.certStore.current()), acme: acme === null ? null : { phase: acme.phase, renewAt: acme.renewAt, renewing: acme.renewing, consecutiveFailures: acme.consecutiveFailures, lastError: acme.lastError, nextCheckAt: acme.nextCheckAt } };
  };

  app.get('/api/v1/certificates', { config: { access: 'read' }, schema: { tags: ['certificates'], summary: 'The certificate in use and the renewal state', response: responses({ 200: statusSchema }) } }, status);

  app.post(
    '/api/v1/certificates/renew',
    {
      config: { access: 'manage' },
      schema: {
        tags: ['certificates'],
        summary: 'Renew now: ACME orders when due (force: always); a certificate file is read again; a self-signed one is made anew with force',
        querystring: { type: 'object', additionalProperties: false, properties: { force: { type: 'string', enum: ['true', 'false'] } } },
        response: responses({ 200: { type: 'object', properties: { renewed: bool, ...statusSchema.properties } } }),
      },
    },
    async (request) => {
      const force = (request.query as { force?: string }).force === 'true';
      const { server } = ctx;
      const before = server.certStore.current();
      let renewed: boolean;
      if (server.acme !== null) {
        try {
          renewed = (await server.acme.renewNow(force)).renewed;
        } catch (err) {
          throw new ApiError(409, 'unavailable', `ACME renewal failed; the current certificate stays: ${(err as Error).message}`);
        }
      } else if (before.source === 'self-signed' && force) {
        const tls = server.config.tls;
        // A fresh pair replaces the stored one (renewal is due "now" for it), then goes to every new connection.
        server.certStore.install(await ensureSelfSignedCertificate({ dir: server.resolvePath(tls.selfSignedDir), names: tls.selfSignedNames, renewBeforeDays: 1e6, log: ctx.log }));
        renewed = true;
      } else {
        renewed = await server.reloadCertificate();
      }
      const after = server.certStore.current();
      if (renewed) await recordAdminChange(ctx, request, { action: 'renew', kind: 'certificate', name: after.source, before: certificateView(before), after: certificateView(after) });
      return { renewed, ...status() };
    },
  );
}
