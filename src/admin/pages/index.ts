import type { FastifyInstance } from 'fastify';
import { redirectWith } from '../admin-server.js';
import { COOKIE, login, logout } from '../auth/credentials.js';
import { principalOf, type AdminContext } from '../context.js';
import { accountPages } from './account.js';
import { callApi } from './api-call.js';
import { ADMIN_CSS, ADMIN_JS } from './assets.js';
import { auditPages } from './audit.js';
import { banPages } from './bans.js';
import { certificatePages } from './certificates.js';
import { dashboardPages } from './dashboard.js';
import { eventPages } from './events.js';
import { html, page, postForm } from './html.js';
import { partnerPages } from './partners.js';

// The web admin: server-rendered pages, one stylesheet and one small script, all served from here. Login sets an
// HttpOnly, Secure, SameSite=Strict cookie holding a login token; every form carries the CSRF token derived from it.

const hide = { hide: true };

/** Only a path on this server is followed after login, never another site. */
function safeNext(next: string | undefined): string {
  return next !== undefined && /^\/(?!\/)[^\\\r\n]*$/.test(next) && !next.startsWith('/login') ? next : '/';
}

function loginForm(next: string, values: { name?: string; totp?: boolean } = {}) {
  return html`<form method="post" action="/login" class="stack" id="login">
<input type="hidden" name="next" value="${next}">
<label>Name <input name="name" autocomplete="username" required value="${values.name ?? ''}" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
${values.totp === true ? html`<label>Code <span>from your authenticator app</span><input name="totp" inputmode="numeric" pattern="[0-9]{6}" autocomplete="one-time-code" required></label>` : html`<label>Code <span>only if the account has a second factor</span><input name="totp" inputmode="numeric" pattern="[0-9]{6}" autocomplete="one-time-code"></label>`}
<button type="submit">Log in</button></form>`;
}

export function registerPages(app: FastifyInstance, ctx: AdminContext): void {
  const asset = (body: string, type: string) => (_request: unknown, reply: import('fastify').FastifyReply) => reply.header('cache-control', 'private, max-age=300').type(type).send(body);
  app.get('/assets/admin.css', { config: { access: 'public' }, schema: hide }, asset(ADMIN_CSS, 'text/css; charset=utf-8'));
  app.get('/assets/admin.js', { config: { access: 'public' }, schema: hide }, asset(ADMIN_JS, 'text/javascript; charset=utf-8'));

  // Browsers ask for it on every site; an empty answer keeps 404s out of their consoles.
  app.get('/favicon.ico', { config: { access: 'public' }, schema: hide }, (_request, reply) => reply.code(204).header('cache-control', 'max-age=86400').send());

  app.get('/login', { config: { access: 'public' }, schema: hide }, (request, reply) => {
    const q = request.query as { next?: string; msg?: string; error?: string };
    return reply.type('text/html; charset=utf-8').send(page({ title: 'Log in', principal: null, msg: q.msg, error: q.error, body: loginForm(safeNext(q.next)) }));
  });

  app.post('/login', { config: { access: 'public' }, schema: hide }, async (request, reply) => {
    const f = (request.body ?? {}) as { name?: string; password?: string; totp?: string; next?: string };
    // A login form posted from another site is refused (login CSRF).
    const origin = request.headers.origin;
    if (typeof origin === 'string' && origin !== `https://${request.headers.host ?? ''}`) return reply.code(403).send('cross-origin login refused');
    const next = safeNext(f.next);
    const outcome = await login(ctx, { name: String(f.name ?? '').slice(0, 64), password: String(f.password ?? '').slice(0, 1024), totp: f.totp === undefined || f.totp === '' ? undefined : String(f.totp), ip: request.ip, via: 'cookie' });
    if (!outcome.ok) {
      const needsCode = outcome.error.code === 'totp_required';
      return reply
        .code(401)
        .type('text/html; charset=utf-8')
        .send(page({ title: 'Log in', principal: null, error: needsCode ? 'Enter the code from your authenticator app' : 'Wrong name, password or code', body: loginForm(next, { name: f.name ?? '', totp: needsCode }) }));
    }
    const maxAge = Math.floor(ctx.server.config.admin.tokenMaxAgeMs / 1000);
    reply.setCookie(COOKIE, outcome.token, { path: '/', httpOnly: true, secure: true, sameSite: 'strict', maxAge });
    return reply.redirect(outcome.principal.mustChangePassword ? '/password' : next);
  });

  app.post('/logout', { config: { access: 'self', page: true, beforePasswordChange: true }, schema: hide }, async (request, reply) => {
    await logout(ctx, principalOf(request));
    reply.clearCookie(COOKIE, { path: '/', httpOnly: true, secure: true, sameSite: 'strict' });
    return redirectWith(reply, '/login', { msg: 'Logged out' });
  });

  app.get('/password', { config: { access: 'self', page: true, beforePasswordChange: true }, schema: hide }, (request, reply) => {
    const p = principalOf(request);
    const q = request.query as { msg?: string; error?: string };
    const intro = p.mustChangePassword ? html`<p>This account has a one-time password. Choose your own before going on.</p>` : html``;
    const body = html`${intro}${postForm('/password', p.csrf ?? '', html`<label>Current password <input name="current" type="password" autocomplete="current-password" required></label>
<label>New password <span>at least 12 characters</span><input name="password" type="password" autocomplete="new-password" minlength="12" required></label>
<button type="submit">Change password</button>`, { className: 'stack' })}`;
    return reply.type('text/html; charset=utf-8').send(page({ title: 'Change password', principal: p, msg: q.msg, error: q.error, body }));
  });

  app.post('/password', { config: { access: 'self', page: true, beforePasswordChange: true }, schema: hide }, async (request, reply) => {
    const f = request.body as { current?: string; password?: string };
    const r = await callApi(app, request, 'POST', '/api/v1/auth/password', { current: f.current ?? '', password: f.password ?? '' });
    return r.ok ? redirectWith(reply, '/', { msg: 'Password changed' }) : redirectWith(reply, '/password', { error: r.error });
  });

  dashboardPages(app, ctx);
  partnerPages(app, ctx);
  banPages(app, ctx);
  eventPages(app, ctx);
  auditPages(app, ctx);
  certificatePages(app, ctx);
  accountPages(app, ctx);
}
