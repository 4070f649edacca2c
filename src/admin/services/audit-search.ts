import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { orderAuditFiles, verifyAuditFile, type VerifyResult } from '../../audit/verify.js';
import type { ServerHandle } from '../../server.js';
import { ApiError } from '../errors.js';

// Search and verification of the audit trail the server writes (log.auditFile and its rotated files). A search reads
// the files in chain order and keeps the newest matches, so its memory is bounded by the result size whatever the
// size of the trail.

export interface AuditQuery {
  /** An FTP user, or an admin account (its logins and changes). */
  user?: string | undefined;
  /** Event names, exact ("transfer", "login_failed", "store_change", ...). */
  events?: string[] | undefined;
  /** Part of a path (transfers and file operations) or of a changed entity's name. */
  path?: string | undefined;
  /** ISO 8601 bounds on the record's time, inclusive. */
  from?: string | undefined;
  to?: string | undefined;
  limit: number;
}

export interface AuditSearchResult {
  records: Array<Record<string, unknown>>;
  /** Records read, all files together. */
  scanned: number;
  /** True when more records matched than were returned (the oldest were left out). */
  truncated: boolean;
  files: string[];
}

function trailOf(server: ServerHandle): NonNullable<ServerHandle['auditTrail']> {
  if (server.auditTrail === null) throw new ApiError(409, 'unavailable', 'no audit file is written: set log.auditFile to search and verify the audit trail');
  return server.auditTrail;
}

/** The audit file and its rotated predecessors (FILE.<time>), oldest first. */
export async function auditFiles(file: string): Promise<string[]> {
  const dir = dirname(file);
  const base = basename(file);
  const names = await readdir(dir).catch(() => [] as string[]);
  const files = names.filter((n) => n === base || n.startsWith(`${base}.`)).map((n) => join(dir, n));
  return orderAuditFiles(files);
}

export function matches(rec: Record<string, unknown>, q: AuditQuery): boolean {
  if (q.events !== undefined && q.events.length > 0 && !q.events.includes(String(rec.event))) return false;
  const time = typeof rec.time === 'string' ? rec.time : '';
  if (q.from !== undefined && time < q.from) return false;
  if (q.to !== undefined && time > q.to) return false;
  if (q.user !== undefined) {
    const u = q.user;
    const byUser = rec.user === u || rec.admin === u || rec.actor === `admin:${u}` || (rec.kind === 'user' && rec.name === u);
    if (!byUser) return false;
  }
  if (q.path !== undefined) {
    const p = q.path;
    const inPath = (typeof rec.path === 'string' && rec.path.includes(p)) || (typeof rec.name === 'string' && rec.name.includes(p));
    if (!inPath) return false;
  }
  return true;
}

export async function searchAudit(server: ServerHandle, q: AuditQuery): Promise<AuditSearchResult> {
  const trail = trailOf(server);
  await trail.flush();
  const files = await auditFiles(trail.file);
  const found: Array<Record<string, unknown>> = [];
  let scanned = 0;
  let matched = 0;
  for (const file of files) {
    const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
    for await (const line of lines) {
      if (line === '') continue;
      scanned++;
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue; // the verifier reports such a line; a search skips it
      }
      if (rec.event === 'checkpoint' || rec.event === 'rotate' || !matches(rec, q)) continue;
      matched++;
      found.push(rec);
      if (found.length > q.limit) found.shift();
    }
  }
  return { records: found.reverse(), scanned, truncated: matched > found.length, files: files.map((f) => basename(f)) };
}

export async function verifyAudit(server: ServerHandle): Promise<VerifyResult & { files: string[] }> {
  const trail = trailOf(server);
  await trail.flush();
  const files = await auditFiles(trail.file);
  const result = await verifyAuditFile(files, trail.hmacKeyFile, { checkpointEvery: server.config.log.auditCheckpointEvery });
  return { ...result, ...(result.ok ? {} : { file: basename(result.file) }), files: files.map((f) => basename(f)) };
}
