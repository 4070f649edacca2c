import type { FastifyInstance } from 'fastify';
import { redirectWith } from '../admin-server.js';
import { may } from '../auth/roles.js';
import { principalOf, type AdminContext } from '../context.js';
import { certificateView } from '../routes/certificates.js';
import { callApi } from './api-call.js';
import { html, page, postForm } from './html.js';

// Certificates: the one FTPS and this listener present, ACME's renewal state, and a renewal now.

const hide = { hide: true };

export function certificatePages(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/certificates', { config: { access: 'read', page: true }, schema: hide }, (request, reply) => {
    const p = principalOf(request);
    const q = request.query as { msg?: string; error?: string };
    const c = certificateView(ctx.server.certStore.current());
    const acme = ctx.server.acme?.status() ?? null;
    const row = (k: string, v: unknown) => html`<tr><th>${k}</th><td>${Array.isArray(v) ? v.join(', ') : v}</td></tr>`;
    const body = html`<table id="certificate">${row('Source', c.source)}${row('Subject', c.subject)}${row('Names', c.names)}${row('Issuer', c.issuer)}${row('Serial', c.serial)}
${row('Valid from', c.notBefore)}${row('Valid until', c.notAfter)}${row('Days left', c.daysLeft)}${row('Installed', c.installedAt)}</table>
${acme === null ? html`<p class="muted">ACME is off (acme.enabled).</p>` : html`<h2>ACME</h2><table>${row('State', acme.phase)}${row('Renewal due', acme.renewAt ?? '-')}${row('Renewing now', acme.renewing ? 'yes' : 'no')}
${row('Failures in a row', acme.consecutiveFailures)}${row('Last error', acme.lastError ?? '-')}${row('Next check', acme.nextCheckAt ?? '-')}</table>`}
${may(p.role, 'manage') ? html`<h2>Renew</h2>${postForm('/certificates/renew', p.csrf ?? '', html`<label><input type="checkbox" name="force" value="true"> even when not due (a self-signed certificate is made anew)</label> <button type="submit" id="renew">Renew now</button>`)}` : ''}`;
    return reply.type('text/html; charset=utf-8').send(page({ title: 'Certificates', principal: p, active: '/certificates', msg: q.msg, error: q.error, body }));
  });

  app.post('/certificates/renew', { config: { access: 'manage', page: true }, schema: hide }, async (request, reply) => {
    const force = (request.body as { force?: string } | undefined)?.force === 'true';
    const r = await callApi(app, request, 'POST', `/api/v1/certificates/renew${force ? '?force=true' : ''}`);
    return redirectWith(reply, '/certificates', r.ok ? { msg: (r.body as { renewed: boolean }).renewed ? 'Certificate renewed' : 'Not renewed: not due yet, or unchanged' } : { error: r.error });
  });
}
