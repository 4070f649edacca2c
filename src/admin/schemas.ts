import { permissionNames } from '../config/schema.js';

// JSON schemas shared by the routes: fastify validates requests and serializes responses with them, and the OpenAPI
// document is generated from them. Partner entities have the shape of an entry of the partners file (see
// docs/admin-guide.md), so what `ftpsd export` writes and what the API returns read alike; the partners file's own
// rules (CIDRs, virtual paths, names) are then applied to what passed the schema (partners/partner-file.ts).

const ERROR_REF = { $ref: 'ApiError#' } as const;

/** Every route answers its errors in the one shape; `ok` are its success responses. */
export function responses(ok: Record<number, unknown>): Record<number, unknown> {
  return { ...ok, 400: ERROR_REF, 401: ERROR_REF, 403: ERROR_REF, 404: ERROR_REF, 409: ERROR_REF, 413: ERROR_REF, 415: ERROR_REF, 500: ERROR_REF };
}

export const str = { type: 'string' } as const;
export const int = { type: 'integer' } as const;
export const bool = { type: 'boolean' } as const;
export const number = { type: 'number' } as const;
export const nullableStr = { type: ['string', 'null'] } as const;
export const nullableInt = { type: ['integer', 'null'] } as const;
export const strList = { type: 'array', items: str } as const;

export const nameParam = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: { type: 'string', minLength: 1, maxLength: 64 } },
} as const;

export const okSchema = { type: 'object', properties: { ok: bool }, required: ['ok'] } as const;

export const policySchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Values not set are inherited from the groups, then the server defaults.',
  properties: {
    allowedNetworks: { type: 'array', items: str, description: 'CIDRs allowed to log in.' },
    minTlsVersion: { type: 'string', enum: ['TLSv1.2', 'TLSv1.3'] },
    clientCertificates: { type: 'array', items: str, description: 'SHA-256 fingerprints of client certificates.' },
    uploadBytesPerSecond: { type: 'integer', minimum: 0 },
    downloadBytesPerSecond: { type: 'integer', minimum: 0 },
    maxSessions: { type: 'integer', minimum: 1 },
    quotaBytes: { type: 'integer', minimum: 0 },
    quotaFiles: { type: 'integer', minimum: 0 },
    requireDataSessionReuse: bool,
    reuseException: {
      type: 'object',
      additionalProperties: false,
      required: ['reason', 'expiresAt'],
      properties: { reason: { type: 'string', minLength: 1 }, expiresAt: { type: 'string', description: 'ISO 8601 date or time.' } },
    },
    autoDisableAfterDays: { type: 'number', minimum: 0 },
    maxPasswordAgeDays: { type: 'number', minimum: 0 },
  },
} as const;

export const permissionsSchema = {
  type: 'object',
  description: 'Virtual path → permissions granted at and below it (the longest matching path wins).',
  additionalProperties: { type: 'array', items: { type: 'string', enum: [...permissionNames] } },
} as const;

export const mountsSchema = {
  type: 'object',
  description: 'Virtual path → folder name.',
  additionalProperties: { type: 'string' },
} as const;

const ownerProperties = {
  description: str,
  home: { type: ['string', 'null'], description: 'Local path template of the home ("{user}" is replaced); null: none.' },
  mounts: mountsSchema,
  permissions: permissionsSchema,
  policy: policySchema,
} as const;

export const groupBody = { type: 'object', additionalProperties: false, properties: ownerProperties } as const;
export const groupOut = { type: 'object', properties: { name: str, ...ownerProperties } } as const;

const userProperties = {
  ...ownerProperties,
  groups: strList,
  disabled: bool,
  expiresAt: { type: ['string', 'null'], description: 'ISO 8601; logins are refused after it.' },
} as const;

const password = { type: 'string', minLength: 8, maxLength: 1024, description: 'Plain text; only its argon2id hash is stored.' } as const;

export const userBody = {
  type: 'object',
  additionalProperties: false,
  properties: { ...userProperties, password },
} as const;
export const userCreateBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1, maxLength: 64 }, ...userProperties, password },
} as const;
export const userOut = {
  type: 'object',
  properties: { name: str, ...userProperties, passwordSet: bool, lastLoginAt: nullableStr },
} as const;

const folderProperties = {
  path: { type: 'string', minLength: 1, description: 'Local path template ("{user}" is replaced).' },
  description: str,
  quota: { type: 'object', additionalProperties: false, properties: { bytes: { type: 'integer', minimum: 0 }, files: { type: 'integer', minimum: 0 } } },
  retention: { type: 'object', additionalProperties: false, properties: { maxAgeDays: { type: 'number', minimum: 0 }, afterDownload: bool } },
} as const;

export const folderBody = { type: 'object', additionalProperties: false, required: ['path'], properties: folderProperties } as const;
export const folderCreateBody = { type: 'object', additionalProperties: false, required: ['name', 'path'], properties: { name: { type: 'string', minLength: 1, maxLength: 64 }, ...folderProperties } } as const;
export const folderOut = { type: 'object', properties: { name: str, ...folderProperties } } as const;

export const passwordBody = { type: 'object', additionalProperties: false, required: ['password'], properties: { password } } as const;

export const transferSnapshot = {
  type: ['object', 'null'],
  properties: { direction: str, path: str, bytes: int, size: nullableInt, startedAt: str, bytesPerSecond: int },
} as const;

export const sessionSnapshot = {
  type: 'object',
  properties: {
    id: str,
    ip: str,
    port: int,
    mode: str,
    connectedAt: str,
    user: nullableStr,
    loginAt: nullableStr,
    client: nullableStr,
    tls: { type: ['object', 'null'], properties: { version: str, cipher: str } },
    via: nullableStr,
    transfer: transferSnapshot,
  },
} as const;

export const banSchema = {
  type: 'object',
  properties: { ip: str, until: str, reason: str, offences: int },
} as const;

/** Audit records carry event-specific fields; the common ones are listed. */
export const auditRecord = {
  type: 'object',
  additionalProperties: true,
  properties: { seq: int, time: str, event: str, user: str, ip: str, path: str },
} as const;

export const certificateSchema = {
  type: 'object',
  properties: {
    source: str,
    subject: str,
    names: strList,
    issuer: str,
    serial: str,
    notBefore: str,
    notAfter: str,
    daysLeft: int,
    installedAt: str,
  },
} as const;

export const roleSchema = { type: 'string', enum: ['admin', 'operator', 'auditor'] } as const;

export const accountOut = {
  type: 'object',
  properties: { name: str, role: roleSchema, disabled: bool, totp: bool, mustChangePassword: bool, lastLoginAt: nullableStr, createdAt: str },
} as const;

export const apiKeyOut = {
  type: 'object',
  properties: { id: str, account: str, label: str, createdAt: str, expiresAt: nullableStr, lastUsedAt: nullableStr },
} as const;
