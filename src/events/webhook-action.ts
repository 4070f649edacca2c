import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import type { EventPayload, WebhookSpec } from '../store/event-model.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, sign } from './signature.js';

// An HTTP(S) POST to a partner's or an application's endpoint: the event as JSON (or, for a pre-commit check, the
// uploaded file with the event in a header), signed with the endpoint's secret. Redirects are not followed: a
// signed message goes where it was configured to go, or fails.

export interface WebhookResponse {
  status: number;
  /** The first few KiB of the response body (for the log, and a check's refusal reason). */
  body: string;
}

export class WebhookError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WebhookError';
  }
}

const RESPONSE_MAX_BYTES = 4096;

export interface WebhookRequest {
  spec: WebhookSpec;
  timeoutMs: number;
  /** JSON of the event: the body of a delivery, the Ftpsd-Event header of a check. */
  eventJson: string;
  payload: EventPayload;
  /** A check's body: the uploaded file; absent: the event JSON is the body. */
  file?: { open(): Readable; size: number };
  /** Test hook for the signature's clock. */
  now?: number;
}

export async function postWebhook(req: WebhookRequest): Promise<WebhookResponse> {
  const { spec, payload } = req;
  let url: URL;
  try {
    url = new URL(spec.url);
  } catch {
    throw new WebhookError(`invalid URL ${JSON.stringify(spec.url)}`);
  }
  const timestamp = Math.floor((req.now ?? Date.now()) / 1000);
  const headers: Record<string, string> = {
    ...spec.headers,
    'user-agent': 'ftpsd-events/1',
    'ftpsd-event': payload.event,
    'ftpsd-event-id': payload.id,
    [TIMESTAMP_HEADER]: String(timestamp),
  };
  let body: Buffer | null = null;
  if (req.file === undefined) {
    body = Buffer.from(req.eventJson);
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(body.length);
  } else {
    headers['content-type'] = 'application/octet-stream';
    headers['content-length'] = String(req.file.size);
    headers['ftpsd-event'] = Buffer.from(req.eventJson).toString('base64');
  }
  if (spec.secret !== '') headers[SIGNATURE_HEADER] = sign(spec.secret, timestamp, req.eventJson);

  const ca = spec.ca ?? (spec.caFile !== null ? await readFile(spec.caFile, 'utf8') : undefined);
  const lib = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : null;
  if (lib === null) throw new WebhookError(`unsupported URL scheme ${url.protocol}`);

  return new Promise<WebhookResponse>((resolve, reject) => {
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      reject(err instanceof WebhookError ? err : new WebhookError(err.message, { cause: err }));
    };
    const request = (lib as typeof https).request(url, { method: 'POST', headers, ...(ca === undefined ? {} : { ca }), agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on('data', (c: Buffer) => {
        if (kept < RESPONSE_MAX_BYTES) chunks.push(c.subarray(0, RESPONSE_MAX_BYTES - kept));
        kept += c.length;
      });
      res.on('error', fail);
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    const timer = setTimeout(() => fail(new WebhookError(`no answer within ${req.timeoutMs} ms`)), req.timeoutMs);
    timer.unref();
    request.on('error', fail);
    if (body !== null) request.end(body);
    else {
      const file = req.file!.open();
      file.on('error', fail);
      file.pipe(request);
    }
  });
}
