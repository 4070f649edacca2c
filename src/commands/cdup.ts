import type { CommandSpec } from './command-spec.js';
import { changeDirectory } from './cwd.js';

export const CDUP: CommandSpec = {
  verb: 'CDUP',
  aliases: ['XCUP'],
  syntax: 'CDUP',
  availability: 'loggedIn',
  run: (s) => changeDirectory(s, '..'),
};
