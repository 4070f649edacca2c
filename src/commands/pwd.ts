import { quotePath } from '../protocol/reply.js';
import type { CommandSpec } from './command-spec.js';

export const PWD: CommandSpec = {
  verb: 'PWD',
  aliases: ['XPWD'],
  syntax: 'PWD',
  availability: 'loggedIn',
  run: (s) => ({ code: 257, text: `${quotePath(s.cwd)} is the current directory` }),
};
