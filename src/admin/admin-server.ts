import type { AddressInfo } from 'node:net';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import swagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type RouteOptions } from 'fastify';
import type { Logger } from 'pino';
import { PasswordHasher } from '../auth/password-hasher.js';
import { unmapIPv4 } from '../protocol/address-text.js';
import type { ServerHandle } from '../server.js';
import type { InstalledCertificate } from '../tls/cert-store.js';
import { authenticate, sameSecret } from './auth/credentials.js';
import { may } from './auth/roles.js';
import type { AdminContext } from './context.js';
import { ApiError, errorSchema, sendError, toApiError } from './errors.js';
import { registerPages } from './pages/index.js';
import { ROUTE_MODULES } from './routes/index.js';

// The HTTPS admin listener: the REST API under /api/v1 (fastify; every route validated by its JSON schemas, from
// which the OpenAPI 3.1 document at /api/v1/openapi.json is generated) and the web admin's pages. It presents the
// certificate FTPS presents and takes a renewed one for new connections at once.

export interface AdminListener {
  readonly port: number;
  readonly app: FastifyInstance;
  close(): Promise<void>;
}

/** No script but our own file, no inline script or style, no framing, forms only to ourselves. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A web admin page: without a login it redirects to /login instead of answering 401. */
    page?: boolean;
  }
}

/** What each app registered (method, URL, config, schema): the OpenAPI test compares it with the document. */
const registered = new WeakMap<FastifyInstance, RouteOptions[]>();
export function registeredRoutes(app: FastifyInstance): readonly RouteOptions[] {
  return registered.get(app) ?? [];
}

export async function buildAdminApp(server: ServerHandle, log: Logger): Promise<FastifyInstance> {
  const cfg = server.config.admin;
  const cert = server.certStore.current();
  const app = Fastify({
    // The FTPS listener's TLS versions and ciphers, so one policy covers both.
    https: { key: cert.keyPem, cert: cert.certPem, minVersion: server.config.tls.minVersion, ciphers: server.config.tls.ciphers },
    bodyLimit: cfg.bodyLimitBytes,
    loggerInstance: log.child({ component: 'admin' }),
    // Changes are logged once each, by the onResponse hook below, with who made them; reads are not.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: false,
    return503OnClosing: true,
    // Wrong types are refused, never coerced ("5" is not a number); every problem is listed, not only the first.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: true, useDefaults: true } },
    // One instance type for routes and pages, whichever server and logger are underneath.
  }) as unknown as FastifyInstance;
  const ctx: AdminContext = { server, log: log.child({ component: 'admin' }), hasher: new PasswordHasher({ concurrency: 1, queueMax: 32 }) };

  const routes: RouteOptions[] = [];
  registered.set(app, routes);
  app.addHook('onRoute', (route) => void routes.push(route));
  app.decorateRequest('principal', null);
  app.addSchema(errorSchema);
  await app.register(cookie);
  await app.register(formbody, { bodyLimit: cfg.bodyLimitBytes });
  // The API takes JSON (and the pages their forms); a text body is refused with 415 rather than read as a string.
  app.removeContentTypeParser('text/plain');
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'ftpsd admin API', version: 'v1', description: 'Partners, sessions, bans, quota, retention, certificates, audit and the server itself. Errors: { "error": { "status", "code", "message", "details" } }.' },
      tags: ROUTE_MODULES.map((m) => ({ name: m.tag, description: m.description })),
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'A token from POST /api/v1/auth/login.' },
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'An API key from POST /api/v1/api-keys.' },
        },
      },
      security: [{ bearer: [] }, { apiKey: [] }],
    },
    // Shared schemas keep their names (ApiError) in components.schemas.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });

  app.addHook('onRequest', async (request, reply) => {
    const ip = unmapIPv4(request.ip);
    if (server.defender?.isBanned(ip)) return sendError(reply, new ApiError(403, 'forbidden', 'your address is temporarily blocked'));
    const config = request.routeOptions.config;
    if (config.access === 'public' || config.access === undefined) return;
    const principal = await authenticate(ctx, request);
    if (principal === null) {
      if (config.page === true) return reply.redirect(`/login?next=${encodeURIComponent(request.url)}`);
      return sendError(reply, new ApiError(401, 'unauthorized', 'log in first: Authorization: Bearer TOKEN (POST /api/v1/auth/login) or X-API-Key'));
    }
    request.principal = principal;
    if (principal.mustChangePassword && config.beforePasswordChange !== true) {
      if (config.page === true) return reply.redirect('/password');
      return sendError(reply, new ApiError(403, 'password_change_required', 'change the one-time password first: POST /api/v1/auth/password'));
    }
    if (!may(principal.role, config.access)) {
      if (config.page === true) return reply.code(403).type('text/html; charset=utf-8').send('<!doctype html><title>Forbidden</title><p>Your role may not do this. <a href="/">Back</a></p>');
      return sendError(reply, new ApiError(403, 'forbidden', `the ${principal.role} role may not do this (needs ${config.access})`));
    }
  });

  // The web admin's cookie goes with every request the browser makes, so a change made with it must prove it comes
  // from one of our pages: the CSRF token they carry (form field or header), and no foreign Origin.
  app.addHook('preValidation', async (request, reply) => {
    const p = request.principal;
    if (p === null || p.via !== 'cookie' || !UNSAFE.has(request.method)) return;
    const origin = request.headers.origin;
    if (typeof origin === 'string' && origin !== `https://${request.headers.host ?? ''}`) return sendError(reply, new ApiError(403, 'csrf', 'cross-origin request refused'));
    const body = request.body as Record<string, unknown> | undefined;
    const sent = request.headers['x-csrf-token'] ?? (typeof body?._csrf === 'string' ? body._csrf : undefined);
    if (typeof sent !== 'string' || p.csrf === null || !sameSecret(sent, p.csrf)) return sendError(reply, new ApiError(403, 'csrf', 'missing or wrong CSRF token; reload the page'));
    if (body !== undefined && typeof body === 'object' && body !== null) delete body._csrf;
  });

  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('content-security-policy', CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    // Not no-referrer: with it, browsers send "Origin: null" on our own form posts and the origin check could not tell.
    reply.header('referrer-policy', 'same-origin');
    reply.header('strict-transport-security', 'max-age=31536000');
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });

  app.setErrorHandler((err, request, reply) => {
    const e = toApiError(err, request);
    if (e.status >= 500) request.log.error({ err, url: request.url }, 'admin request failed');
    return sendError(reply, e);
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, new ApiError(404, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`)));

  // Every change is logged with who made it, from where, and the outcome.
  app.addHook('onResponse', async (request, reply) => {
    if (!UNSAFE.has(request.method)) return;
    request.log.info({ event: 'admin_request', method: request.method, url: request.url.split('?')[0], status: reply.statusCode, admin: request.principal?.name, ip: request.ip }, 'admin request');
  });

  for (const m of ROUTE_MODULES) m.register(app, ctx);
  app.get(
    '/api/v1/openapi.json',
    { config: { access: 'public' }, schema: { tags: ['server'], summary: 'This API as an OpenAPI 3.1 document', security: [], response: { 200: { type: 'object', additionalProperties: true } } } },
    () => app.swagger(),
  );
  registerPages(app, ctx);
  return app;
}

export async function startAdminServer(opts: { server: ServerHandle; log: Logger }): Promise<AdminListener> {
  const { server, log } = opts;
  const app = await buildAdminApp(server, log);
  await app.ready();
  const onCertificate = (c: InstalledCertificate) => {
    try {
      (app.server as import('node:https').Server).setSecureContext({ key: c.keyPem, cert: c.certPem, minVersion: server.config.tls.minVersion, ciphers: server.config.tls.ciphers });
    } catch (err) {
      log.error({ err, event: 'admin_certificate_failed' }, 'admin listener keeps its previous certificate');
    }
  };
  server.certStore.on('change', onCertificate);
  try {
    await app.listen({ host: server.config.admin.host, port: server.config.admin.port });
  } catch (err) {
    server.certStore.off('change', onCertificate);
    await app.close();
    throw new Error(`admin listener cannot listen on ${server.config.admin.host}:${server.config.admin.port} (admin.host, admin.port): ${(err as Error).message}`, { cause: err });
  }
  const port = (app.server.address() as AddressInfo).port;
  log.info({ event: 'admin_listening', host: server.config.admin.host, port }, 'admin listening');
  return {
    port,
    app,
    async close() {
      server.certStore.off('change', onCertificate);
      await app.close();
    },
  };
}

/** Sends a page redirect after a form; `msg` or `error` is shown by the page it lands on. */
export function redirectWith(reply: FastifyReply, to: string, outcome: { msg?: string; error?: string }): FastifyReply {
  const q = new URLSearchParams();
  if (outcome.msg !== undefined) q.set('msg', outcome.msg);
  if (outcome.error !== undefined) q.set('error', outcome.error);
  return reply.redirect(`${to}${to.includes('?') ? '&' : '?'}${q.toString()}`);
}

export type { FastifyRequest };
