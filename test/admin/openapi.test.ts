import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { pino } from 'pino';
import { buildAdminApp, registeredRoutes } from '../../src/admin/admin-server.js';
import { ROUTE_MODULES } from '../../src/admin/routes/index.js';
import { startAdminServer, type AdminServer } from './admin-helpers.js';

// The OpenAPI document the server serves is generated from the routes' schemas. This keeps it valid (against the
// OpenAPI 3.1 schema) and complete: every /api/v1 route is in it, with a summary, a tag, its parameters, its request
// body where it takes one, a success response with a schema, and the shared error shape.

const BODYLESS = new Set(['DELETE', 'GET']);

describe('OpenAPI document', () => {
  let s: AdminServer;
  let doc: any;
  let routes: ReturnType<typeof registeredRoutes>;

  before(async () => {
    s = await startAdminServer();
    const r = await s.request('GET', '/api/v1/openapi.json');
    assert.equal(r.status, 200, r.text);
    doc = r.json;
    // A second app on the same server handle, not listening, to list what the code registers.
    const app = await buildAdminApp(s.server, pino({ level: 'silent' }));
    await app.ready();
    routes = registeredRoutes(app).filter((route) => route.url.startsWith('/api/v1/') && route.method !== 'HEAD');
    await app.close();
  });
  after(() => s?.close());

  it('is served without a login and is a valid OpenAPI 3.1 document', async () => {
    assert.equal(doc.openapi, '3.1.0');
    const result = await new Validator().validate(doc);
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2)?.slice(0, 3000));
    assert.ok(doc.components.schemas.ApiError, 'the error shape is a named component');
  });

  it('describes every API route with its schemas', () => {
    assert.ok(routes.length >= 50, `the API has its routes (${routes.length})`);
    const tags = new Set(ROUTE_MODULES.map((m) => m.tag));
    const problems: string[] = [];
    for (const route of routes) {
      for (const method of [route.method].flat()) {
        if (method === 'HEAD') continue;
        const path = route.url.replace(/:([A-Za-z]+)/g, '{$1}');
        const op = doc.paths[path]?.[method.toLowerCase()];
        const where = `${method} ${route.url}`;
        if (op === undefined) {
          problems.push(`${where}: missing from the document`);
          continue;
        }
        if (typeof op.summary !== 'string' || op.summary.length < 5) problems.push(`${where}: no summary`);
        if (!Array.isArray(op.tags) || op.tags.length !== 1 || !tags.has(op.tags[0])) problems.push(`${where}: no tag of a route module`);
        if (route.config?.access === undefined) problems.push(`${where}: no config.access`);
        const ok = Object.entries(op.responses ?? {}).find(([code]) => code.startsWith('2'));
        if (ok === undefined || (ok[1] as any).content?.['application/json']?.schema === undefined) problems.push(`${where}: no success response schema`);
        if (op.responses?.['400']?.content?.['application/json']?.schema?.$ref !== '#/components/schemas/ApiError' && route.url !== '/api/v1/openapi.json') problems.push(`${where}: errors not in the shared shape`);
        for (const param of path.match(/\{[A-Za-z]+\}/g) ?? []) {
          const name = param.slice(1, -1);
          if (!(op.parameters ?? []).some((p: any) => p.in === 'path' && p.name === name && p.schema !== undefined)) problems.push(`${where}: path parameter ${name} not described`);
        }
        if (route.schema?.body !== undefined && op.requestBody?.content?.['application/json']?.schema === undefined) problems.push(`${where}: request body not described`);
        if (!BODYLESS.has(method) && route.schema?.body === undefined && route.schema?.querystring === undefined && !['/api/v1/auth/logout', '/api/v1/auth/totp/setup', '/api/v1/audit/verify', '/api/v1/quota/rescan', '/api/v1/retention/dry-run', '/api/v1/retention/run', '/api/v1/reload', '/api/v1/admins/:name/password-reset'].includes(route.url)) {
          problems.push(`${where}: a change without a body schema`);
        }
      }
    }
    assert.deepEqual(problems, []);
    const documented = Object.values(doc.paths).reduce((n: number, ops: any) => n + Object.keys(ops).length, 0);
    assert.equal(documented, routes.reduce((n, r) => n + [r.method].flat().filter((m) => m !== 'HEAD').length, 0), 'nothing documented that is not a route');
  });

  it('leaves the web pages out', () => {
    for (const path of Object.keys(doc.paths)) assert.ok(path.startsWith('/api/v1/'), path);
  });
});
