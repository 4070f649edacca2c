import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import argon2 from 'argon2';
import { HASH_PARAMS } from '../../src/auth/password-hasher.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { insertAccount } from '../../src/store/admin-repo.js';
import type { AdminRole } from '../../src/store/schema.js';
import { startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

// A test server with its admin listener, and a small HTTPS client for it: real requests over TLS to a real port.

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

/** The JSON body of a successful answer, after checking its status. */
export function ok(r: HttpResult, status = 200): any {
  assert.equal(r.status, status, `${r.status} ${r.text.slice(0, 600)}`);
  return r.json;
}

/** The message of an error answer, after checking its status and the one error shape every route answers with. */
export function errorOf(r: HttpResult, status: number, code: string): string {
  assert.equal(r.status, status, r.text);
  assert.equal(r.json?.error?.code, code, r.text);
  assert.equal(r.json.error.status, status);
  assert.equal(typeof r.json.error.message, 'string');
  return r.json.error.message as string;
}

export interface AdminServer extends TestServer {
  adminPort: number;
  /** Raw request to the admin listener. */
  request(method: string, path: string, opts?: CallOptions): Promise<HttpResult>;
  /** Creates an account directly in the store (no one-time password), logs it in, returns its token. */
  account(name: string, role: AdminRole): Promise<{ name: string; password: string; token: string }>;
  login(name: string, password: string, totp?: string): Promise<HttpResult>;
}

export interface CallOptions {
  body?: unknown;
  raw?: string | Buffer;
  headers?: Record<string, string>;
  token?: string;
  /** Source address (another loopback address, to be told apart by the defender). */
  localAddress?: string;
}

export function httpsCall(port: number, method: string, path: string, opts: CallOptions = {}): Promise<HttpResult> {
  const payload = opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  const headers: Record<string, string> = { ...(payload !== undefined && opts.raw === undefined ? { 'content-type': 'application/json' } : {}), ...(opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` }), ...opts.headers };
  if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload));
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, method, path, headers, rejectUnauthorized: false, timeout: 30_000, ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown = null;
        try {
          json = JSON.parse(text);
        } catch {
          // not JSON (pages, YAML)
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

export async function startAdminServer(opts: { users?: TestUser[]; config?: ConfigInput } = {}): Promise<AdminServer> {
  const input = opts.config ?? {};
  const t = await startTestServer({
    users: opts.users,
    config: { ...input, admin: { enabled: true, port: 0, failedLoginDelayMs: 0, ...input.admin }, log: { auditFile: 'audit/audit.log', ...input.log } },
  });
  const adminPort = t.server.adminPort!;
  const request: AdminServer['request'] = (method, path, o) => httpsCall(adminPort, method, path, o);
  const login: AdminServer['login'] = (name, password, totp) => request('POST', '/api/v1/auth/login', { body: { name, password, ...(totp === undefined ? {} : { totp }) } });
  return {
    ...t,
    adminPort,
    request,
    login,
    async account(name, role) {
      const password = randomBytes(12).toString('base64url');
      await insertAccount(t.server.store.db, { name, role, passwordHash: await argon2.hash(password, HASH_PARAMS), mustChangePassword: false }, Date.now());
      const r = await login(name, password);
      if (r.status !== 200) throw new Error(`login of ${name} failed: ${r.status} ${r.text}`);
      return { name, password, token: (r.json as { token: string }).token };
    },
  };
}
