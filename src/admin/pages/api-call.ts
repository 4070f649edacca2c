import type { FastifyInstance, FastifyRequest } from 'fastify';
import { principalOf } from '../context.js';

// The pages change nothing themselves: a form is turned into the API request that does it, sent through the same
// fastify instance with the page's own login (cookie and CSRF token) and the browser's address. The same schemas,
// roles and audit records apply to a change whichever way it came.

export interface ApiResult {
  ok: boolean;
  status: number;
  body: unknown;
  /** The API's error message and details, for the page. */
  error: string;
}

export async function callApi(app: FastifyInstance, request: FastifyRequest, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown): Promise<ApiResult> {
  const p = principalOf(request);
  const res = await app.inject({
    method,
    url,
    remoteAddress: request.ip,
    headers: {
      cookie: request.headers.cookie ?? '',
      'x-csrf-token': p.csrf ?? '',
      ...(request.headers.host === undefined ? {} : { host: request.headers.host }),
      ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
  });
  let body: unknown = null;
  try {
    body = res.json();
  } catch {
    body = res.body;
  }
  const err = (body as { error?: { message?: string; details?: string[] } } | null)?.error;
  const details = err?.details !== undefined && err.details.length > 1 ? `\n${err.details.join('\n')}` : '';
  return { ok: res.statusCode < 400, status: res.statusCode, body, error: err === undefined ? `request failed (${res.statusCode})` : `${err.message ?? 'request failed'}${details}` };
}
