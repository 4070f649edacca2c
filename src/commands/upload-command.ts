import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Session } from '../control/session.js';
import { crlfToLf } from '../data/ascii-mode.js';
import type { DataConnection } from '../data/data-connection.js';
import { receiveFromClient } from '../data/transfer.js';
import { FtpError } from '../errors.js';
import type { Reply } from '../protocol/reply.js';
import type { UploadMode } from '../storage/backend.js';
import { auditFileOp } from './path-args.js';
import { connectionFacts, sessionFacts } from './event-facts.js';
import { auditTransfer, transferLimits } from './transfer-audit.js';

/**
 * STOR, APPE and STOU share this: the upload is opened (hidden) before 150, committed only after a complete and
 * cleanly closed transfer, and discarded otherwise, so the target never shows a half file.
 */
export async function runUpload(s: Session, path: string, mode: UploadMode, preliminary: string, done: (sha256: string) => Reply): Promise<Reply> {
  const chunk = s.server.config.limits.transferChunkBytes;
  const user = s.user.name;
  let upload;
  try {
    // Whether a check rule matches is known from the user and path alone (its size filter waits for the bytes).
    const mayCheck = s.server.events.uploadCheck({ ...sessionFacts(s), path }) !== undefined;
    upload = await s.storage.openUpload(path, mode, chunk, { mayCheck });
  } catch (err) {
    publishUploadEnd(s, path, null, 0, false, err);
    throw err;
  }
  const started = Date.now();
  const offset = mode.kind === 'resume' ? mode.offset : 0;
  let committed = false;
  // Counted as they arrive, so an interrupted upload is audited with what was received.
  const progress = { bytes: 0 };
  let receivedAny = false;
  let conn: DataConnection | null = null;
  try {
    const reply = await s.data.transfer('upload', preliminary, async (c, signal) => {
      conn = c;
      receivedAny = true;
      let sink: Writable = upload.stream;
      // TYPE A: the converter's own pipeline, awaited before commit. With `.pipe` the file stream could still be
      // writing when the converter finished, and commit refused the upload as incomplete.
      let converted: Promise<void> | null = null;
      if (s.params.type === 'A') {
        const convert = crlfToLf();
        converted = pipeline(convert, upload.stream);
        converted.catch(() => undefined);
        sink = convert;
      }
      await receiveFromClient(c, sink, transferLimits(s, 'upload'), signal, chunk, progress);
      await converted;
      // The pre-commit check (if a rule asks for one) sees the complete bytes before anything is visible; the
      // upload's event is written with the quota count, and in any case before the 226 goes out.
      const facts = { ...sessionFacts(s), ...connectionFacts(c), path, bytes: progress.bytes };
      const record = s.server.events.uploadCommit(facts);
      const result = await upload.commit({ check: s.server.events.uploadCheck(facts), journal: record.journal });
      committed = true;
      await record.settle(result).catch(() => undefined); // logged; the file is stored, the client gets its 226
      auditTransfer(s, { user, direction: 'upload', path, bytes: progress.bytes, started, conn: c, offset, sha256: result.sha256, result: 'ok', code: 226 });
      return done(result.sha256);
    }, { path, size: null, progress });
    if (!committed) {
      auditTransfer(s, { user, direction: 'upload', path, bytes: progress.bytes, started, conn, offset, result: 'aborted', code: reply.code });
      publishUploadEnd(s, path, conn, progress.bytes, receivedAny, reply.code);
    }
    return reply;
  } catch (err) {
    const code = err instanceof FtpError ? err.code : 451;
    // RFC 959 426 "transfer aborted": the connection was cut or stalled (a truncated upload included), not a server failure.
    auditTransfer(s, { user, direction: 'upload', path, bytes: progress.bytes, started, conn, offset, result: code === 426 ? 'aborted' : 'failed', code });
    publishUploadEnd(s, path, conn, progress.bytes, receivedAny, err);
    throw err;
  } finally {
    // An interrupted upload keeps its bytes under the hidden partial name, so REST + STOR can continue it.
    if (!committed) {
      await upload.abort(receivedAny).catch((e: unknown) => s.log.warn({ err: e, path }, 'discarding upload failed'));
      if (receivedAny) auditFileOp(s, 'upload_discarded', { path });
    }
  }
}

/**
 * The event of an upload that was not committed: quota_exceeded when the quota stopped it, upload_discarded when bytes
 * were received and thrown away. A refusal by the pre-commit check has published upload_refused already.
 */
function publishUploadEnd(s: Session, path: string, conn: DataConnection | null, bytes: number, receivedAny: boolean, outcome: unknown): void {
  const err = outcome instanceof FtpError ? outcome : null;
  const code = typeof outcome === 'number' ? outcome : (err?.code ?? 451);
  const facts = { ...sessionFacts(s), ...connectionFacts(conn), path, bytes, code };
  if (err?.reason === 'quota_bytes' || err?.reason === 'quota_files') {
    s.server.events.publish({ ...facts, event: 'quota_exceeded', result: 'refused', reason: err.message });
  } else if (err?.reason !== 'upload_check_refused' && receivedAny) {
    s.server.events.publish({ ...facts, event: 'upload_discarded', result: code === 426 || typeof outcome === 'number' ? 'aborted' : 'failed', reason: err?.reason ?? null });
  }
}
