import { FtpError } from '../errors.js';
import type { CommandSpec } from './command-spec.js';

export const USER: CommandSpec = {
  verb: 'USER',
  syntax: 'USER <name>',
  availability: 'any',
  needsArg: true,
  run(s, arg) {
    s.requireTlsForLogin();
    if (s.phase.kind === 'ready') throw new FtpError(530, "Can't change to another user; use REIN first");
    if (s.server.stopping) throw new FtpError(421, 'Server shutting down');
    s.phase = { kind: 'needPass', userName: arg.trim() };
    return { code: 331, text: 'Password required' };
  },
};
