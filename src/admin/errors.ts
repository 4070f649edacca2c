import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

// One error shape for every failure of the admin API, whatever produced it (schema validation, the body parser, a
// route, an unexpected exception): { "error": { "status", "code", "message", "details"? } }. Codes are stable and
// meant for programs; messages are for people. Internal details stay in the log.

export type ApiErrorCode =
  | 'invalid_request'
  | 'malformed_json'
  | 'body_too_large'
  | 'unsupported_media_type'
  | 'unauthorized'
  | 'invalid_credentials'
  | 'totp_required'
  | 'forbidden'
  | 'password_change_required'
  | 'csrf'
  | 'not_found'
  | 'conflict'
  | 'unavailable'
  | 'internal_error';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ApiErrorCode,
    message: string,
    readonly details?: string[],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const notFound = (what: string) => new ApiError(404, 'not_found', `${what} not found`);
export const conflict = (message: string) => new ApiError(409, 'conflict', message);
export const invalid = (message: string, details?: string[]) => new ApiError(400, 'invalid_request', message, details);

export interface ErrorBody {
  error: { status: number; code: ApiErrorCode; message: string; details?: string[] };
}

/** JSON schema of ErrorBody, registered once as "ApiError" and referenced by every route's 4xx/5xx responses. */
export const errorSchema = {
  $id: 'ApiError',
  type: 'object',
  description: 'Every error of the API has this shape.',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['status', 'code', 'message'],
      properties: {
        status: { type: 'integer', description: 'The HTTP status, repeated.' },
        code: { type: 'string', description: 'Stable machine-readable code (invalid_request, not_found, forbidden, ...).' },
        message: { type: 'string', description: 'What went wrong, for a person.' },
        details: { type: 'array', items: { type: 'string' }, description: 'One line per problem found in the request.' },
      },
    },
  },
} as const;

export function errorBody(e: ApiError): ErrorBody {
  return { error: { status: e.status, code: e.code, message: e.message, ...(e.details === undefined ? {} : { details: e.details }) } };
}

/** Maps whatever was thrown to an ApiError; unknown errors become a 500 whose cause is logged, never sent. */
export function toApiError(err: unknown, request: FastifyRequest): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as FastifyError;
  if (e.validation !== undefined) {
    const where = e.validationContext ?? 'request';
    const details = e.validation.map((v) => {
      const path = `${where}${v.instancePath.replace(/\//g, '.')}`;
      if (v.keyword === 'additionalProperties') return `${path}: unknown property "${String((v.params as { additionalProperty?: string }).additionalProperty)}"`;
      if (v.keyword === 'required') return `${path}: missing property "${String((v.params as { missingProperty?: string }).missingProperty)}"`;
      return `${path}: ${v.message ?? 'is invalid'}`;
    });
    return new ApiError(400, 'invalid_request', `invalid ${where}: ${details[0] ?? 'does not match the schema'}`, details);
  }
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError(400, 'malformed_json', `the request body is not valid JSON${e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? ' (it is empty)' : ''}`);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, 'body_too_large', `the request body is larger than ${request.routeOptions.bodyLimit ?? 'the limit'} bytes (admin.bodyLimitBytes)`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'unsupported_media_type', `content type ${JSON.stringify(request.headers['content-type'] ?? '')} is not accepted here: send application/json`);
    default:
      break;
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new ApiError(e.statusCode, e.statusCode === 404 ? 'not_found' : 'invalid_request', e.message);
  }
  return new ApiError(500, 'internal_error', 'internal error; see the server log');
}

export function sendError(reply: FastifyReply, e: ApiError): FastifyReply {
  return reply.code(e.status).type('application/json; charset=utf-8').send(errorBody(e));
}
