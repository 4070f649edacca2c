import type { CommandSpec } from './command-spec.js';
import { requirePermission, resolveArg, statRegularFile } from './path-args.js';

/** draft-bryan-ftpext-hash (as FileZilla uses it): `213 SHA-256 0-<end> <hex> <path>`. */
export const HASH: CommandSpec = {
  verb: 'HASH',
  syntax: 'HASH <path>',
  availability: 'loggedIn',
  needsArg: true,
  feat: 'HASH SHA-256*',
  async run(s, arg) {
    requirePermission(s, 'download');
    const path = resolveArg(s, arg);
    const info = await statRegularFile(s, path);
    const digest = await s.storage.sha256(path);
    return { code: 213, text: `SHA-256 0-${Math.max(0, info.size - 1)} ${digest} ${arg}` };
  },
};
