import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { z } from 'zod';
import { nonNegativeInt, permissionNames, type Permission } from '../config/schema.js';
import { ConfigError, formatIssues } from '../config/load.js';

export const ALL_PERMISSIONS: readonly Permission[] = permissionNames;

const userSchema = z
  .object({
    /** argon2id PHC string; the password itself is never stored. */
    password: z.string().startsWith('$argon2', 'must be an argon2 hash (use `ftpsd user passwd`)'),
    home: z.string().min(1),
    permissions: z.array(z.enum(permissionNames)).default([...permissionNames]),
    /** Client networks this user may log in from; empty: any. */
    allowedNetworks: z.array(z.string()).default([]),
    /** SHA-256 fingerprints (hex, colons optional) of client certificates that map to this user; empty: none needed. */
    clientCertificates: z.array(z.string()).default([]),
    disabled: z.boolean().default(false),
    /** Per-transfer rate limits for this user, in bytes per second (0: unlimited); absent: limits.*BytesPerSecond. */
    uploadBytesPerSecond: nonNegativeInt.optional(),
    downloadBytesPerSecond: nonNegativeInt.optional(),
    /**
     * This user's data connections must resume their control connection's TLS session; absent:
     * tls.requireDataSessionReuse. `false` is an exception for a partner whose client cannot reuse sessions (stock
     * Apache Commons Net, ftplib's FTP_TLS): only that user's data ports can then be raced by someone who guesses them.
     */
    requireDataSessionReuse: z.boolean().optional(),
  })
  .strict();

const usersFileSchema = z.object({ users: z.record(z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, 'user names use letters, digits and . _ @ -'), userSchema).default({}) }).strict();

export type UserRecord = z.infer<typeof userSchema>;
export type UsersFile = z.infer<typeof usersFileSchema>;

export interface User {
  name: string;
  passwordHash: string;
  /** Absolute path of the home directory. */
  home: string;
  permissions: ReadonlySet<Permission>;
  allowedNetworks: readonly string[];
  clientCertificates: readonly string[];
  disabled: boolean;
  /** This user's rate limits in bytes per second; null: the server-wide limits apply. */
  uploadBytesPerSecond: number | null;
  downloadBytesPerSecond: number | null;
  /** This user's exception to tls.requireDataSessionReuse; null: the server-wide setting applies. */
  requireDataSessionReuse: boolean | null;
}

export function readUsersFile(path: string): UsersFile {
  if (!existsSync(path)) return { users: {} };
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8')) ?? {};
  } catch (err) {
    throw new ConfigError(`users file ${path} is not valid YAML`, [(err as Error).message.split('\n')[0] ?? '']);
  }
  const result = usersFileSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(`users file ${path} is invalid`, formatIssues(result.error.issues));
  return result.data;
}

/** Written to a temporary file and renamed, so a crash never leaves a truncated users file; mode 0600 (hashes). */
export async function writeUsersFile(path: string, data: UsersFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const text = `# ftpsd users: edit with \`ftpsd user add|passwd|del\`; passwords are argon2id hashes.\n${stringifyYaml(data)}`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

export function toUser(name: string, record: UserRecord, resolveHome: (p: string) => string): User {
  return {
    name,
    passwordHash: record.password,
    home: resolveHome(record.home),
    permissions: new Set(record.permissions),
    allowedNetworks: record.allowedNetworks,
    clientCertificates: record.clientCertificates.map((f) => f.replace(/:/g, '').toLowerCase()),
    disabled: record.disabled,
    uploadBytesPerSecond: record.uploadBytesPerSecond ?? null,
    downloadBytesPerSecond: record.downloadBytesPerSecond ?? null,
    requireDataSessionReuse: record.requireDataSessionReuse ?? null,
  };
}

export function parsePermissions(text: string): Permission[] {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 1 && items[0] === 'all') return [...permissionNames];
  for (const item of items) {
    if (!(permissionNames as readonly string[]).includes(item)) {
      throw new ConfigError(`unknown permission "${item}"; use a comma-separated list of ${permissionNames.join(', ')} or "all"`);
    }
  }
  return items as Permission[];
}
