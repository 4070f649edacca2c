import type { FastifyInstance } from 'fastify';
import { redirectWith } from '../admin-server.js';
import { principalOf, type AdminContext } from '../context.js';
import { callApi } from './api-call.js';
import { formatBytes, html, page, postForm, type Html } from './html.js';
import { may } from '../auth/roles.js';

// The dashboard: open sessions (with the transfer each is running, refreshed every two seconds) and the latest
// transfers.

function liveTables(ctx: AdminContext, csrf: string, canKick: boolean): Html {
  const sessions = ctx.server.sessions.list();
  const transfers = ctx.server.recentTransfers().slice(0, 20);
  return html`<h2>Open sessions (${sessions.length})</h2>
<table id="sessions"><thead><tr><th>User</th><th>Address</th><th>Client</th><th>TLS</th><th>Since</th><th>Transfer</th><th></th></tr></thead><tbody>
${sessions.length === 0 ? html`<tr><td colspan="7" class="muted">No open sessions</td></tr>` : ''}
${sessions.map((s) => {
  const t = s.transfer;
  const pct = t !== null && t.size !== null && t.size > 0 ? Math.min(100, Math.floor((t.bytes / t.size) * 100)) : null;
  return html`<tr data-session="${s.id}" data-user="${s.user ?? ''}"><td>${s.user ?? html`<span class="muted">(logging in)</span>`}</td><td>${s.ip}</td><td>${s.client ?? ''}</td>
<td>${s.tls === null ? html`<span class="muted">plain</span>` : html`${s.tls.version}<br><span class="muted">${s.tls.cipher}</span>`}</td><td>${s.connectedAt.slice(11, 19)}</td>
<td>${t === null ? '' : html`${t.direction} <code>${t.path}</code><br>${formatBytes(t.bytes)}${t.size === null ? '' : html` of ${formatBytes(t.size)}`} · ${formatBytes(t.bytesPerSecond)}/s${pct === null ? '' : html` <span class="progress" title="${pct}%"><span data-pct="${pct}" class="w${Math.round(pct / 10) * 10}"></span></span>`}`}</td>
<td>${canKick ? postForm(`/sessions/${s.id}/kick`, csrf, html`<button type="submit" class="danger" name="kick">Kick</button>`, { confirm: `Close the session of ${s.user ?? s.ip}?` }) : ''}</td></tr>`;
})}
</tbody></table>
<h2>Latest transfers</h2>
<table id="transfers"><thead><tr><th>Time</th><th>User</th><th>Address</th><th>Direction</th><th>Path</th><th class="num">Bytes</th><th>Result</th></tr></thead><tbody>
${transfers.length === 0 ? html`<tr><td colspan="7" class="muted">No transfers since the start</td></tr>` : ''}
${transfers.map((t) => html`<tr><td>${String(t.time).replace('T', ' ').slice(0, 19)}</td><td>${t.user ?? ''}</td><td>${t.ip ?? ''}</td><td>${t.direction ?? ''}</td><td><code>${t.path ?? ''}</code></td><td class="num">${typeof t.bytes === 'number' ? formatBytes(t.bytes) : ''}</td><td>${t.result ?? ''}</td></tr>`)}
</tbody></table>`;
}

export function dashboardPages(app: FastifyInstance, ctx: AdminContext): void {
  const hide = { hide: true };
  app.get('/', { config: { access: 'read', page: true }, schema: hide }, (request, reply) => {
    const p = principalOf(request);
    const q = request.query as { msg?: string; error?: string };
    const health = ctx.server.readiness();
    const body = html`<p>${health.ready ? 'Ready' : html`<span class="error">Not ready: ${health.problems.join('; ')}</span>`} · FTPS on port ${ctx.server.port} · ${ctx.server.defender?.activeBanCount() ?? 0} active bans</p>
<div id="live" data-live="/fragments/dashboard" data-interval="2000">${liveTables(ctx, p.csrf ?? '', may(p.role, 'kick'))}</div>`;
    return reply.type('text/html; charset=utf-8').send(page({ title: 'Dashboard', principal: p, active: '/', msg: q.msg, error: q.error, body }));
  });

  app.get('/fragments/dashboard', { config: { access: 'read', page: true }, schema: hide }, (request, reply) => {
    const p = principalOf(request);
    return reply.type('text/html; charset=utf-8').send(liveTables(ctx, p.csrf ?? '', may(p.role, 'kick')).text);
  });

  app.post('/sessions/:id/kick', { config: { access: 'kick', page: true }, schema: hide }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const r = await callApi(app, request, 'DELETE', `/api/v1/sessions/${encodeURIComponent(id)}`);
    const s = r.body as { user?: string | null; ip?: string };
    return redirectWith(reply, '/', r.ok ? { msg: `Session of ${s.user ?? s.ip ?? id} closed` } : { error: r.error });
  });
}
