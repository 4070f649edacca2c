import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { lfToCrlf } from '../data/ascii-mode.js';
import { sendFileToClient, sendToClient } from '../data/transfer.js';
import { FtpError } from '../errors.js';
import { FILE_RANGE, type FileRange } from '../storage/backend.js';
import type { CommandSpec } from './command-spec.js';
import { requirePermission, resolveArg, statRegularFile } from './path-args.js';
import { takeRestOffset } from './rest.js';
import { auditTransfer, transferLimits } from './transfer-audit.js';

export const RETR: CommandSpec = {
  verb: 'RETR',
  syntax: 'RETR <path>',
  availability: 'loggedIn',
  needsArg: true,
  async run(s, arg) {
    const user = s.user.name;
    const offset = takeRestOffset(s);
    const path = resolveArg(s, arg);
    requirePermission(s, 'download', path);
    const chunk = s.server.config.limits.transferChunkBytes;
    // Opened before 150 so a missing or unreadable file is a plain 550, with no data connection wasted. A local file
    // opened this way was found to be a regular file and its size read: no second lookup of the path.
    const file = await s.storage.openRead(path, offset, chunk);
    const range = (file as { [FILE_RANGE]?: FileRange })[FILE_RANGE];
    let size: number;
    try {
      size = range?.size ?? (await statRegularFile(s, path)).size;
    } catch (err) {
      file.destroy();
      throw err;
    }
    // pipeline (not pipe) so a read error in the middle ends the transfer at once instead of at the stall timeout.
    const source = s.params.type === 'A' ? asciiSource(file) : file;
    const started = Date.now();
    const mode = s.params.type === 'A' ? 'ASCII' : 'BINARY';
    // Counted as they go, so an aborted download is audited with what actually left.
    const progress = { bytes: 0 };
    let conn: Parameters<typeof auditTransfer>[1]['conn'] = null;
    try {
      const reply = await s.data.transfer('download', `Opening ${mode} mode data connection for ${path} (${size} bytes)`, async (c, signal) => {
        conn = c;
        // Binary from a local file: straight from the descriptor into buffers reused chunk after chunk.
        if (s.params.type !== 'A' && range !== undefined) await sendFileToClient(range, c, transferLimits(s, 'download'), signal, chunk, progress, s.server.config.storage.syncIoMaxBytes);
        else await sendToClient(source, c, transferLimits(s, 'download'), signal, chunk, progress);
        return { code: 226, text: 'Transfer complete' };
      }, { path, size: Math.max(0, size - offset), progress });
      auditTransfer(s, { user, direction: 'download', path, bytes: progress.bytes, started, conn, offset, result: reply.code === 226 ? 'ok' : 'aborted', code: reply.code });
      return reply;
    } catch (err) {
      const code = err instanceof FtpError ? err.code : 451;
      // RFC 959 426 "transfer aborted": the connection was cut or stalled, not a server failure.
      auditTransfer(s, { user, direction: 'download', path, bytes: progress.bytes, started, conn, offset, result: code === 426 ? 'aborted' : 'failed', code });
      throw err;
    } finally {
      file.destroy();
    }
  },
};

function asciiSource(file: Readable): Readable {
  const convert = lfToCrlf();
  pipeline(file, convert).catch((err: unknown) => convert.destroy(err as Error));
  return convert;
}
