import { Readable } from 'node:stream';
import type { Session } from '../control/session.js';
import { sendToClient } from '../data/transfer.js';
import type { Reply } from '../protocol/reply.js';
import type { FileInfo, Listing } from '../storage/backend.js';
import { isListableName } from '../storage/listing-format.js';
import { requirePermission, resolveArg, stripListOptions } from './path-args.js';
import { transferLimits } from './transfer-audit.js';

/** Lines are gathered into chunks of about this size before they go to the data connection. */
const LISTING_CHUNK_BYTES = 16 * 1024;
/** Buffer between the listing and the data connection: a listing holds little, whatever the directory's size. */
const LISTING_BUFFER_BYTES = 64 * 1024;

/**
 * What a listing command shows: a directory's entries (or names), read as they are sent, or the file itself when
 * the path names a file. Read one of `entries` and `names`, once. `close` releases the directory when it is not read
 * to the end (a refused data connection).
 */
export interface ListTarget {
  path: string;
  dir: boolean;
  /** The listed path itself. */
  self: FileInfo;
  entries(): AsyncIterable<FileInfo>;
  names(): AsyncIterable<string>;
  close(): Promise<void>;
}

export async function openListTarget(s: Session, arg: string): Promise<ListTarget> {
  const path = resolveArg(s, stripListOptions(arg));
  requirePermission(s, 'list', path);
  const self = await s.storage.stat(path);
  if (self.type !== 'dir') {
    return { path, dir: false, self, entries: () => from([self]), names: () => from([self.name]), close: async () => undefined };
  }
  const listing: Listing = await s.storage.openListing(path);
  return {
    path,
    dir: true,
    self,
    entries: () => listable(listing, (e) => e.name),
    names: () => listable(listing.names(), (n) => n),
    close: () => listing.close(),
  };
}

/**
 * LIST, NLST and MLSD send lines over the data connection as the directory is read, at the pace the client takes
 * them (stream backpressure); 226 when all went out. The target is closed in every case.
 */
export async function sendListing(s: Session, target: ListTarget, lines: AsyncIterable<string>): Promise<Reply> {
  let sent = 0;
  try {
    const chunk = Math.min(LISTING_BUFFER_BYTES, s.server.config.limits.transferChunkBytes);
    const reply = await s.data.transfer('download', 'Here comes the directory listing', async (conn, signal) => {
      const source = Readable.from(lineChunks(lines), { objectMode: false, highWaterMark: chunk });
      const out = await sendToClient(source, conn, transferLimits(s, 'download'), signal, chunk);
      sent = out.bytes;
      return { code: 226, text: 'Directory send OK' };
    });
    s.server.metrics.transfer('listing', reply.code === 226 ? 'ok' : 'aborted', sent);
    return reply;
  } finally {
    await target.close();
  }
}

/** One line per item, `head` lines first (MLSD's cdir entry). */
export async function* formatLines<T>(items: AsyncIterable<T>, format: (item: T) => string, head: string[] = []): AsyncGenerator<string> {
  yield* head;
  for await (const item of items) yield format(item);
}

async function* lineChunks(lines: AsyncIterable<string>): AsyncGenerator<Buffer> {
  let pending = '';
  for await (const line of lines) {
    pending += `${line}\r\n`;
    if (pending.length >= LISTING_CHUNK_BYTES) {
      yield Buffer.from(pending, 'utf8');
      pending = '';
    }
  }
  if (pending !== '') yield Buffer.from(pending, 'utf8');
}

/** A CR or LF in a name would end its line and let the name forge the next entry. */
async function* listable<T>(items: AsyncIterable<T>, name: (item: T) => string): AsyncGenerator<T> {
  for await (const item of items) if (isListableName(name(item))) yield item;
}

async function* from<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}
