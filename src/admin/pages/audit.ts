import type { FastifyInstance } from 'fastify';
import { principalOf, type AdminContext } from '../context.js';
import { callApi } from './api-call.js';
import { html, page, postForm } from './html.js';

// Audit: search the trail by user, event, path and time; verify its chain.

const hide = { hide: true };
/** Fields shown in their own columns; the rest of a record goes to "details". */
const SHOWN = new Set(['seq', 'time', 'event', 'user', 'ip', 'path', 'prev', 'hash', 'action', 'kind', 'name', 'actor', 'at']);

export function auditPages(app: FastifyInstance, _ctx: AdminContext): void {
  app.get('/audit', { config: { access: 'audit', page: true }, schema: hide }, async (request, reply) => {
    const p = principalOf(request);
    const q = request.query as Record<string, string | undefined>;
    const filters = { user: q.user ?? '', event: q.event ?? '', path: q.path ?? '', from: q.from ?? '', to: q.to ?? '' };
    const params = new URLSearchParams(Object.entries(filters).filter(([, v]) => v !== ''));
    params.set('limit', '200');
    const r = await callApi(app, request, 'GET', `/api/v1/audit/records?${params.toString()}`);
    const result = r.ok ? (r.body as { records: Array<Record<string, unknown>>; scanned: number; truncated: boolean }) : null;
    const body = html`<form method="get" action="/audit" class="filters">
<label>User <input name="user" value="${filters.user}"></label><label>Event <input name="event" value="${filters.event}" placeholder="transfer,login_failed"></label>
<label>Path <input name="path" value="${filters.path}"></label><label>From <input name="from" value="${filters.from}" placeholder="2027-01-31"></label>
<label>To <input name="to" value="${filters.to}" placeholder="2027-01-31T18:00:00Z"></label><button type="submit">Search</button></form>
${postForm('/audit/verify', p.csrf ?? '', html`<button type="submit" id="verify">Verify the chain</button>`)}
${result === null ? '' : html`<p class="muted">${result.records.length} records${result.truncated ? ' (the newest; narrow the search for older ones)' : ''}, ${result.scanned} read.</p>
<table id="audit"><thead><tr><th>Seq</th><th>Time</th><th>Event</th><th>User</th><th>Address</th><th>Path</th><th>Details</th></tr></thead><tbody>
${result.records.map((rec) => html`<tr><td>${rec.seq}</td><td>${String(rec.time ?? '').replace('T', ' ').slice(0, 19)}</td><td>${rec.event}${rec.action === undefined ? '' : html`<br><span class="muted">${rec.action} ${rec.kind ?? ''}</span>`}</td><td>${rec.user ?? rec.admin ?? rec.actor ?? ''}</td><td>${rec.ip ?? ''}</td><td><code>${rec.path ?? rec.name ?? ''}</code></td>
<td><code>${JSON.stringify(Object.fromEntries(Object.entries(rec).filter(([k]) => !SHOWN.has(k))))}</code></td></tr>`)}
</tbody></table>`}`;
    return reply.type('text/html; charset=utf-8').send(page({ title: 'Audit', principal: p, active: '/audit', msg: q.msg, error: r.ok ? q.error : r.error, body }));
  });

  app.post('/audit/verify', { config: { access: 'audit', page: true }, schema: hide }, async (request, reply) => {
    const p = principalOf(request);
    const r = await callApi(app, request, 'POST', '/api/v1/audit/verify');
    const v = r.body as { ok?: boolean; records?: number; checkpoints?: number; file?: string; line?: number; problem?: string };
    const body = html`<p><a href="/audit">Back to the search</a></p>`;
    const outcome = !r.ok ? { error: r.error } : v.ok === true ? { msg: `Audit chain intact: ${v.records} records, ${v.checkpoints} checkpoints verified` } : { error: `Audit chain broken in ${v.file} at line ${v.line}: ${v.problem}` };
    return reply.type('text/html; charset=utf-8').send(page({ title: 'Audit verification', principal: p, active: '/audit', ...outcome, body }));
  });
}
