import type { FastifyInstance } from 'fastify';
import { redirectWith } from '../admin-server.js';
import { may } from '../auth/roles.js';
import { principalOf, type AdminContext } from '../context.js';
import { callApi } from './api-call.js';
import { html, page, postForm } from './html.js';

// Bans: the defender's list, a ban by hand, and lifting one.

const hide = { hide: true };

export function banPages(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/bans', { config: { access: 'read', page: true }, schema: hide }, (request, reply) => {
    const p = principalOf(request);
    const q = request.query as { msg?: string; error?: string };
    const csrf = p.csrf ?? '';
    const bans = ctx.server.defender?.list() ?? [];
    const body = html`${ctx.server.defender === null ? html`<p class="error">The defender is off (defender.enabled: false).</p>` : ''}
<table id="bans"><thead><tr><th>Address</th><th>Until</th><th>Reason</th><th class="num">Offences</th><th></th></tr></thead><tbody>
${bans.length === 0 ? html`<tr><td colspan="5" class="muted">No active bans</td></tr>` : ''}
${bans.map((b) => html`<tr data-ip="${b.ip}"><td>${b.ip}</td><td>${new Date(b.until).toISOString().replace('T', ' ').slice(0, 19)}</td><td>${b.reason}</td><td class="num">${b.offences}</td>
<td>${may(p.role, 'unban') ? postForm(`/bans/${encodeURIComponent(b.ip)}/remove`, csrf, html`<button type="submit" name="unban">Unban</button>`, { confirm: `Lift the ban of ${b.ip}?` }) : ''}</td></tr>`)}
</tbody></table>
${may(p.role, 'manage')
  ? html`<h2>Ban an address</h2>${postForm('/bans', csrf, html`<label>Address <input name="ip" required></label><label>Minutes <input name="minutes" value="60" inputmode="numeric"></label>
<label>Reason <input name="reason" value="manual"></label><button type="submit" class="danger">Ban</button>`, { className: 'stack' })}`
  : ''}`;
    return reply.type('text/html; charset=utf-8').send(page({ title: 'Bans', principal: p, active: '/bans', msg: q.msg, error: q.error, body }));
  });

  app.post('/bans', { config: { access: 'manage', page: true }, schema: hide }, async (request, reply) => {
    const f = request.body as { ip?: string; minutes?: string; reason?: string };
    const minutes = Number(f.minutes ?? '60');
    const r = await callApi(app, request, 'POST', '/api/v1/bans', { ip: (f.ip ?? '').trim(), minutes: Number.isInteger(minutes) ? minutes : f.minutes, reason: f.reason ?? 'manual' });
    return redirectWith(reply, '/bans', r.ok ? { msg: `${(r.body as { ip: string }).ip} banned` } : { error: r.error });
  });

  app.post('/bans/:ip/remove', { config: { access: 'unban', page: true }, schema: hide }, async (request, reply) => {
    const { ip } = request.params as { ip: string };
    const r = await callApi(app, request, 'DELETE', `/api/v1/bans/${encodeURIComponent(ip)}`);
    return redirectWith(reply, '/bans', r.ok ? { msg: `Ban of ${ip} lifted` } : { error: r.error });
  });
}
