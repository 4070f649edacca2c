import type { FastifyInstance } from 'fastify';
import { redirectWith } from '../admin-server.js';
import { may } from '../auth/roles.js';
import { principalOf, type AdminContext } from '../context.js';
import { listDeliveries, countDeliveries, loadEventHooks } from '../../store/event-repo.js';
import { callApi } from './api-call.js';
import { html, page, postForm } from './html.js';

// Event hooks at a glance: the rules, the delivery counts, and the failed deliveries (dead letters) with a button to
// send each again. Rules and actions are edited through the API or the partners file (docs/events.md).

const hide = { hide: true };
const FAILED_SHOWN = 100;

function when(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

export function eventPages(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/events', { config: { access: 'read', page: true }, schema: hide }, async (request, reply) => {
    const p = principalOf(request);
    const q = request.query as { msg?: string; error?: string };
    const csrf = p.csrf ?? '';
    const db = ctx.server.store.db;
    const [hooks, counts, failed] = await Promise.all([loadEventHooks(db), countDeliveries(db), listDeliveries(db, { state: 'failed', limit: FAILED_SHOWN })]);
    const rules = Object.values(hooks.rules);
    const canRetry = may(p.role, 'retry');
    const body = html`<p id="event-counts">Pending <strong>${counts.pending}</strong> · failed <strong>${counts.failed}</strong> · delivered <strong>${counts.delivered}</strong></p>
<h2>Rules</h2>
<table id="event-rules"><thead><tr><th>Rule</th><th>Events</th><th>Paths</th><th>Actions</th><th>Enabled</th></tr></thead><tbody>
${rules.length === 0 ? html`<tr><td colspan="5" class="muted">No rules</td></tr>` : ''}
${rules.map((r) => html`<tr data-rule="${r.name}"><td>${r.name}</td><td>${r.events.join(', ')}</td><td>${r.paths.length === 0 ? 'any' : r.paths.join(', ')}</td><td>${r.actions.map((a) => `${a} (${hooks.actions[a]?.kind ?? 'missing'})`).join(', ')}</td><td>${r.enabled ? 'yes' : 'no'}</td></tr>`)}
</tbody></table>
<h2>Failed deliveries</h2>
<table id="event-failed"><thead><tr><th class="num">ID</th><th>Event</th><th>Time</th><th>Action</th><th class="num">Attempts</th><th>Last error</th><th></th></tr></thead><tbody>
${failed.length === 0 ? html`<tr><td colspan="7" class="muted">No failed deliveries</td></tr>` : ''}
${failed.map((d) => html`<tr data-delivery="${d.id}"><td class="num">${d.id}</td><td>${d.eventType} <span class="muted">${d.eventId}</span></td><td>${when(d.eventAt)}</td><td>${d.action}</td><td class="num">${d.attempts}</td><td>${d.lastError ?? ''}</td>
<td>${canRetry ? postForm(`/events/deliveries/${d.id}/retry`, csrf, html`<button type="submit" name="retry">Retry</button>`) : ''}</td></tr>`)}
</tbody></table>
${counts.failed > FAILED_SHOWN ? html`<p class="muted">The newest ${FAILED_SHOWN} of ${counts.failed}; the API lists them all.</p>` : ''}`;
    return reply.type('text/html; charset=utf-8').send(page({ title: 'Events', principal: p, active: '/events', msg: q.msg, error: q.error, body }));
  });

  app.post('/events/deliveries/:id/retry', { config: { access: 'retry', page: true }, schema: hide }, async (request, reply) => {
    const id = Number((request.params as { id: string }).id);
    const r = await callApi(app, request, 'POST', '/api/v1/events/deliveries/retry', { id: Number.isSafeInteger(id) ? id : (request.params as { id: string }).id });
    return redirectWith(reply, '/events', r.ok ? { msg: `Delivery ${id} queued again` } : { error: r.error });
  });
}
