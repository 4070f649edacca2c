import { createHash, randomBytes } from 'node:crypto';

/**
 * Hidden names the local backend gives to uploads that are not complete. They live in the target's own directory
 * (same file system, so the final rename is atomic) and are never shown to clients or addressable by them:
 *
 * - `.ftpsd-upload-<12 hex>.<name>`: an upload in progress. Renamed over `<name>` on commit, removed on abort.
 * - `.ftpsd-partial.<name>`: the bytes of an aborted upload kept for `REST n` + `STOR <name>` to continue. When
 *   `<name>` is too long for that, `.ftpsd-partial.~<sha256 of name, 40 hex>` is used instead.
 *
 * A stale upload temporary (a crashed server) can be removed by the operator; a partial is replaced by the next
 * aborted upload of the same name, consumed by a resume, and removed when an upload of the name succeeds.
 */
export const UPLOAD_TEMP_PREFIX = '.ftpsd-upload-';
export const PARTIAL_PREFIX = '.ftpsd-partial.';

/** The longest name a Linux file system stores (NAME_MAX); hidden names are kept within it whatever the config. */
const FS_NAME_MAX_BYTES = 255;
const RANDOM_BYTES = 6;

export function isUploadArtifact(name: string): boolean {
  return name.startsWith(UPLOAD_TEMP_PREFIX) || name.startsWith(PARTIAL_PREFIX);
}

/**
 * Temporaries are told apart by a counter from a random start, not by fresh random bytes per upload (a call into
 * the CSPRNG per file for a name that only needs to be unique; O_EXCL refuses a collision anyway). 48 bits, 12 hex.
 */
let nextTempId = randomBytes(RANDOM_BYTES).readUIntBE(0, RANDOM_BYTES);
const TEMP_ID_SPACE = 2 ** (8 * RANDOM_BYTES);

export function uploadTempName(name: string): string {
  nextTempId = (nextTempId + 1) % TEMP_ID_SPACE;
  const head = `${UPLOAD_TEMP_PREFIX}${nextTempId.toString(16).padStart(2 * RANDOM_BYTES, '0')}.`;
  return head + truncateUtf8(name, FS_NAME_MAX_BYTES - Buffer.byteLength(head));
}

export function partialName(name: string): string {
  const full = PARTIAL_PREFIX + name;
  if (Buffer.byteLength(full) <= FS_NAME_MAX_BYTES) return full;
  return `${PARTIAL_PREFIX}~${createHash('sha256').update(name).digest('hex').slice(0, 40)}`;
}

/** The longest prefix of `s` that fits in `maxBytes` UTF-8 bytes without splitting a character. */
function truncateUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s) <= maxBytes) return s;
  let bytes = 0;
  let end = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > maxBytes) break;
    bytes += n;
    end += ch.length;
  }
  return s.slice(0, end);
}
