import { FtpError } from '../errors.js';
import type { Session } from '../control/session.js';
import type { CommandSpec } from './command-spec.js';
import { resolveArg } from './path-args.js';

export async function changeDirectory(s: Session, arg: string) {
  const path = resolveArg(s, arg);
  const info = await s.storage.stat(path);
  if (info.type !== 'dir') throw new FtpError(550, 'Not a directory', { reason: 'not_dir' });
  s.cwd = path;
  return { code: 250, text: 'Directory successfully changed' };
}

export const CWD: CommandSpec = {
  verb: 'CWD',
  aliases: ['XCWD'],
  syntax: 'CWD <path>',
  availability: 'loggedIn',
  needsArg: true,
  run: (s, arg) => changeDirectory(s, arg),
};
