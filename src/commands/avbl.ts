import { FtpError } from '../errors.js';
import type { CommandSpec } from './command-spec.js';
import { requirePermission, resolveArg } from './path-args.js';

/**
 * AVBL (draft-peterson-streamlined-ftp-command-extensions, as FileZilla Server and SFTPGo answer it): `213 <bytes>`
 * that may still be stored in the current directory or the one named. Storage decides the figure (free disk space
 * today, what is left of a quota later); a listing permission is needed, as for any look at a directory.
 */
export const AVBL: CommandSpec = {
  verb: 'AVBL',
  syntax: 'AVBL [<path>]',
  availability: 'loggedIn',
  feat: 'AVBL',
  async run(s, arg) {
    requirePermission(s, 'list');
    const path = arg.trim() === '' ? s.cwd : resolveArg(s, arg);
    const info = await s.storage.stat(path);
    if (info.type !== 'dir') throw new FtpError(550, 'Not a directory', { reason: 'not_dir' });
    return { code: 213, text: String(await s.storage.spaceAvailable(path)) };
  },
};
