import type { FastifyInstance } from 'fastify';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { redirectWith } from '../admin-server.js';
import { may } from '../auth/roles.js';
import { principalOf, type AdminContext } from '../context.js';
import { getEntity, listEntities } from '../services/partner-changes.js';
import { ApiError } from '../errors.js';
import { callApi } from './api-call.js';
import { html, page, postForm } from './html.js';

// Partners: the list of users, the "new partner" flow (a user with its own upload-only inbox and download-only
// outbox), and an editor that shows a user as its entry of the partners file (the format of `ftpsd apply`).

const hide = { hide: true };

export function partnerPages(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/partners', { config: { access: 'read', page: true }, schema: hide }, async (request, reply) => {
    const p = principalOf(request);
    const q = request.query as { msg?: string; error?: string };
    const users = await listEntities(ctx, 'user');
    const body = html`${may(p.role, 'manage') ? html`<p><a href="/partners/new" id="new-partner">New partner</a></p>` : ''}
<table id="partners"><thead><tr><th>Name</th><th>Description</th><th>Groups</th><th>Mounts</th><th>State</th></tr></thead><tbody>
${users.map((u) => html`<tr data-user="${u.name}"><td><a href="/partners/${encodeURIComponent(String(u.name))}">${u.name}</a></td><td>${u.description ?? ''}</td><td>${((u.groups as string[] | undefined) ?? []).join(', ')}</td>
<td>${Object.entries((u.mounts as Record<string, string> | undefined) ?? {}).map(([path, folder]) => html`<code>${path}</code> → ${folder}<br>`)}</td><td>${u.disabled === true ? 'disabled' : 'enabled'}</td></tr>`)}
</tbody></table>`;
    return reply.type('text/html; charset=utf-8').send(page({ title: 'Partners', principal: p, active: '/partners', msg: q.msg, error: q.error, body }));
  });

  const newForm = (csrf: string, values: Record<string, string> = {}) => html`<p>Creates a user with two folders of its own: <code>/inbox</code>, where the partner uploads and cannot list or read back, and
<code>/outbox</code>, which it lists and downloads from. It can log in at once.</p>
${postForm('/partners/new', csrf, html`
<label>Name <input name="name" required pattern="[A-Za-z0-9._@-]{1,64}" value="${values.name ?? ''}"></label>
<label>Password <span>empty: one is generated and shown once</span><input name="password" type="password" autocomplete="new-password" minlength="8"></label>
<label>Directory <span>inbox/ and outbox/ are created in it; default data/exchange/NAME</span><input name="basePath" value="${values.basePath ?? ''}"></label>
<label>Description <input name="description" value="${values.description ?? ''}"></label>
<label>Allowed networks <span>comma-separated CIDRs; empty: any</span><input name="allowedNetworks" value="${values.allowedNetworks ?? ''}"></label>
<label>Outbox retention <span>days after the first download; empty: kept</span><input name="outboxRetentionDays" inputmode="decimal" value="${values.outboxRetentionDays ?? ''}"></label>
<button type="submit">Create partner</button>`, { className: 'stack' })}`;

  app.get('/partners/new', { config: { access: 'manage', page: true }, schema: hide }, (request, reply) => {
    const p = principalOf(request);
    return reply.type('text/html; charset=utf-8').send(page({ title: 'New partner', principal: p, active: '/partners', body: newForm(p.csrf ?? '') }));
  });

  app.post('/partners/new', { config: { access: 'manage', page: true }, schema: hide }, async (request, reply) => {
    const p = principalOf(request);
    const f = request.body as Record<string, string>;
    const payload: Record<string, unknown> = { name: (f.name ?? '').trim() };
    if ((f.password ?? '') !== '') payload.password = f.password;
    if ((f.basePath ?? '').trim() !== '') payload.basePath = f.basePath!.trim();
    if ((f.description ?? '').trim() !== '') payload.description = f.description!.trim();
    if ((f.allowedNetworks ?? '').trim() !== '') payload.allowedNetworks = f.allowedNetworks!.split(',').map((s) => s.trim()).filter((s) => s !== '');
    if ((f.outboxRetentionDays ?? '').trim() !== '') payload.outboxRetentionDays = Number(f.outboxRetentionDays);
    const r = await callApi(app, request, 'POST', '/api/v1/partners', payload);
    if (!r.ok) {
      return reply.code(r.status).type('text/html; charset=utf-8').send(page({ title: 'New partner', principal: p, active: '/partners', error: r.error, body: newForm(p.csrf ?? '', f) }));
    }
    const created = r.body as { user: { name: string }; password: string | null };
    const name = created.user.name;
    const body = html`<p>Partner <a href="/partners/${encodeURIComponent(name)}">${name}</a> created with <code>/inbox</code> (upload only) and <code>/outbox</code> (list and download).</p>
${created.password === null ? '' : html`<p>Password, shown only now: <span class="secret" id="partner-password">${created.password}</span></p>`}
<pre>curl --ssl-reqd -u ${name}:PASSWORD -T FILE ftp://HOST:${ctx.server.port}/inbox/</pre>`;
    return reply.type('text/html; charset=utf-8').send(page({ title: 'Partner created', principal: p, active: '/partners', msg: `Partner ${name} created`, body }));
  });

  const editor = async (name: string) => {
    const entry = await getEntity(ctx, 'user', name);
    const { name: _n, passwordSet, lastLoginAt, ...rest } = entry;
    return { yaml: stringifyYaml(rest, { lineWidth: 0 }), passwordSet: passwordSet === true, lastLoginAt: lastLoginAt as string | null, disabled: rest.disabled === true };
  };

  app.get('/partners/:name', { config: { access: 'read', page: true }, schema: hide }, async (request, reply) => {
    const p = principalOf(request);
    const { name } = request.params as { name: string };
    const q = request.query as { msg?: string; error?: string };
    let e;
    try {
      e = await editor(name);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return redirectWith(reply, '/partners', { error: err.message });
      throw err;
    }
    const csrf = p.csrf ?? '';
    const manage = may(p.role, 'manage');
    const enc = encodeURIComponent(name);
    const body = html`<p>Last login: ${e.lastLoginAt ?? 'never'} · password ${e.passwordSet ? 'set' : 'not set'} · ${e.disabled ? 'disabled' : 'enabled'}</p>
<h2>Settings</h2>
<p class="muted">The user as an entry of the partners file (see the admin guide, "Partners file"): description, home, groups, mounts,
permissions per path, policy, disabled, expiresAt.</p>
${manage
  ? postForm(`/partners/${enc}`, csrf, html`<textarea name="yaml" id="partner-yaml" spellcheck="false">${e.yaml}</textarea><button type="submit">Save</button>`, { className: 'stack' })
  : html`<pre>${e.yaml}</pre>`}
${manage
  ? html`<h2>Password</h2>${postForm(`/partners/${enc}/password`, csrf, html`<label>New password <input name="password" type="password" autocomplete="new-password" minlength="8" required></label><button type="submit">Set password</button>`, { className: 'stack' })}
<h2>Delete</h2>${postForm(`/partners/${enc}/delete`, csrf, html`<button type="submit" class="danger">Delete ${name}</button>`, { confirm: `Delete ${name}? Its sessions close; its folders and files stay.` })}`
  : ''}`;
    return reply.type('text/html; charset=utf-8').send(page({ title: `Partner ${name}`, principal: p, active: '/partners', msg: q.msg, error: q.error, body }));
  });

  app.post('/partners/:name', { config: { access: 'manage', page: true }, schema: hide }, async (request, reply) => {
    const { name } = request.params as { name: string };
    const enc = encodeURIComponent(name);
    let entry: unknown;
    try {
      entry = parseYaml((request.body as { yaml?: string }).yaml ?? '') ?? {};
    } catch (err) {
      return redirectWith(reply, `/partners/${enc}`, { error: `not valid YAML: ${(err as Error).message.split('\n')[0]}` });
    }
    const r = await callApi(app, request, 'PUT', `/api/v1/users/${enc}`, entry);
    return redirectWith(reply, `/partners/${enc}`, r.ok ? { msg: 'Saved' } : { error: r.error });
  });

  app.post('/partners/:name/password', { config: { access: 'manage', page: true }, schema: hide }, async (request, reply) => {
    const { name } = request.params as { name: string };
    const enc = encodeURIComponent(name);
    const r = await callApi(app, request, 'PUT', `/api/v1/users/${enc}/password`, { password: (request.body as { password?: string }).password ?? '' });
    return redirectWith(reply, `/partners/${enc}`, r.ok ? { msg: 'Password set' } : { error: r.error });
  });

  app.post('/partners/:name/delete', { config: { access: 'manage', page: true }, schema: hide }, async (request, reply) => {
    const { name } = request.params as { name: string };
    const r = await callApi(app, request, 'DELETE', `/api/v1/users/${encodeURIComponent(name)}`);
    return r.ok ? redirectWith(reply, '/partners', { msg: `${name} deleted` }) : redirectWith(reply, `/partners/${encodeURIComponent(name)}`, { error: r.error });
  });
}
