import { Readable } from 'node:stream';
import type { Session } from '../control/session.js';
import { sendToClient } from '../data/transfer.js';
import type { Reply } from '../protocol/reply.js';
import type { FileInfo } from '../storage/backend.js';
import { isListableName } from '../storage/listing-format.js';
import { requirePermission, resolveArg, stripListOptions } from './path-args.js';
import { transferLimits } from './transfer-audit.js';

/** The entries a listing command shows: a directory's content, or the file itself when the path names a file. */
export async function listTarget(s: Session, arg: string): Promise<{ path: string; dir: boolean; entries: FileInfo[] }> {
  const path = resolveArg(s, stripListOptions(arg));
  requirePermission(s, 'list', path);
  const info = await s.storage.stat(path);
  if (info.type !== 'dir') return { path, dir: false, entries: [info] };
  const entries = (await s.storage.list(path)).filter((e) => isListableName(e.name));
  return { path, dir: true, entries };
}

/** LIST, NLST and MLSD send lines over the data connection; 226 when all went out. */
export async function sendListing(s: Session, lines: string[]): Promise<Reply> {
  const body = Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'utf8');
  let sent = 0;
  const reply = await s.data.transfer('download', 'Here comes the directory listing', async (conn, signal) => {
    const out = await sendToClient(Readable.from([body]), conn, transferLimits(s, 'download'), signal, s.server.config.limits.transferChunkBytes);
    sent = out.bytes;
    return { code: 226, text: 'Directory send OK' };
  });
  s.server.metrics.transfer('listing', reply.code === 226 ? 'ok' : 'aborted', sent);
  return reply;
}
