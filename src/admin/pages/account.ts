import type { FastifyInstance } from 'fastify';
import { redirectWith } from '../admin-server.js';
import { findAccount, listApiKeys } from '../../store/admin-repo.js';
import { principalOf, type AdminContext } from '../context.js';
import { callApi } from './api-call.js';
import { html, page, postForm } from './html.js';

// The account's own settings: the second factor (TOTP) and API keys.

const hide = { hide: true };

export function accountPages(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/account', { config: { access: 'self', page: true }, schema: hide }, async (request, reply) => {
    const p = principalOf(request);
    const q = request.query as { msg?: string; error?: string };
    const csrf = p.csrf ?? '';
    const account = await findAccount(ctx.server.store.db, p.name);
    const keys = await listApiKeys(ctx.server.store.db, p.name);
    const body = html`<h2>Second factor</h2>
${account?.totpSecret != null
  ? html`<p>On: logins need the code of your authenticator app.</p>${postForm('/account/totp/disable', csrf, html`<label>Current code <input name="code" inputmode="numeric" pattern="[0-9]{6}" required></label> <button type="submit" class="danger">Turn off</button>`)}`
  : html`<p>Off. With it on, logins also need a code from an authenticator app (RFC 6238 TOTP).</p>${postForm('/account/totp/setup', csrf, html`<button type="submit" id="totp-setup">Set up</button>`)}`}
<h2>API keys</h2>
<table id="api-keys"><thead><tr><th>Id</th><th>Label</th><th>Created</th><th>Expires</th><th>Last used</th><th></th></tr></thead><tbody>
${keys.map((k) => html`<tr><td><code>${k.id}</code></td><td>${k.label}</td><td>${new Date(k.createdAt).toISOString().slice(0, 16)}</td><td>${k.expiresAt === null ? 'never' : new Date(k.expiresAt).toISOString().slice(0, 16)}</td>
<td>${k.lastUsedAt === null ? '-' : new Date(k.lastUsedAt).toISOString().slice(0, 16)}</td><td>${postForm(`/account/api-keys/${k.id}/delete`, csrf, html`<button type="submit" class="danger">Revoke</button>`, { confirm: `Revoke ${k.label}?` })}</td></tr>`)}
</tbody></table>
${postForm('/account/api-keys', csrf, html`<label>Label <input name="label" required maxlength="200"></label><label>Expires after days <span>empty: never</span><input name="expiresInDays" inputmode="numeric"></label><button type="submit">Create API key</button>`, { className: 'stack' })}
<h2>Password</h2><p><a href="/password">Change your password</a></p>`;
    return reply.type('text/html; charset=utf-8').send(page({ title: `Account ${p.name}`, principal: p, active: '/account', msg: q.msg, error: q.error, body }));
  });

  app.post('/account/totp/setup', { config: { access: 'self', page: true }, schema: hide }, async (request, reply) => {
    const p = principalOf(request);
    const r = await callApi(app, request, 'POST', '/api/v1/auth/totp/setup');
    if (!r.ok) return redirectWith(reply, '/account', { error: r.error });
    const { secret, uri } = r.body as { secret: string; uri: string };
    const body = html`<p>Add this key to your authenticator app (as text, or the URI below), then enter the code it shows.</p>
<p>Key: <span class="secret" id="totp-secret">${secret}</span></p><p><code>${uri}</code></p>
${postForm('/account/totp/confirm', p.csrf ?? '', html`<label>Code <input name="code" inputmode="numeric" pattern="[0-9]{6}" required autocomplete="one-time-code"></label><button type="submit">Turn on</button>`, { className: 'stack' })}`;
    return reply.type('text/html; charset=utf-8').send(page({ title: 'Set up the second factor', principal: p, active: '/account', body }));
  });

  app.post('/account/totp/confirm', { config: { access: 'self', page: true }, schema: hide }, async (request, reply) => {
    const r = await callApi(app, request, 'POST', '/api/v1/auth/totp/confirm', { code: (request.body as { code?: string }).code ?? '' });
    return redirectWith(reply, '/account', r.ok ? { msg: 'Second factor on' } : { error: r.error });
  });

  app.post('/account/totp/disable', { config: { access: 'self', page: true }, schema: hide }, async (request, reply) => {
    const r = await callApi(app, request, 'DELETE', '/api/v1/auth/totp', { code: (request.body as { code?: string }).code ?? '' });
    return redirectWith(reply, '/account', r.ok ? { msg: 'Second factor off' } : { error: r.error });
  });

  app.post('/account/api-keys', { config: { access: 'self', page: true }, schema: hide }, async (request, reply) => {
    const p = principalOf(request);
    const f = request.body as { label?: string; expiresInDays?: string };
    const days = (f.expiresInDays ?? '').trim();
    const r = await callApi(app, request, 'POST', '/api/v1/api-keys', { label: f.label ?? '', ...(days === '' ? {} : { expiresInDays: Number.isInteger(Number(days)) ? Number(days) : days }) });
    if (!r.ok) return redirectWith(reply, '/account', { error: r.error });
    const { key } = r.body as { key: string };
    const body = html`<p>API key, shown only now: <span class="secret" id="api-key">${key}</span></p><pre>curl -H 'X-API-Key: ${key}' https://${request.headers.host ?? 'HOST'}/api/v1/sessions</pre><p><a href="/account">Back</a></p>`;
    return reply.type('text/html; charset=utf-8').send(page({ title: 'API key created', principal: p, active: '/account', body }));
  });

  app.post('/account/api-keys/:id/delete', { config: { access: 'self', page: true }, schema: hide }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const r = await callApi(app, request, 'DELETE', `/api/v1/api-keys/${encodeURIComponent(id)}`);
    return redirectWith(reply, '/account', r.ok ? { msg: 'API key revoked' } : { error: r.error });
  });
}
