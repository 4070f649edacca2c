import { FtpError } from '../errors.js';
import type { CommandSpec } from './command-spec.js';

/** RFC 7151: names the virtual host; must come before login. One host per server here, so any name is accepted. */
export const HOST: CommandSpec = {
  verb: 'HOST',
  syntax: 'HOST <domain>',
  availability: 'any',
  needsArg: true,
  feat: 'HOST',
  run(s, arg) {
    if (s.phase.kind !== 'greeted') throw new FtpError(503, 'HOST must come before USER');
    s.virtualHost = arg.trim();
    return { code: 220, text: 'Host accepted' };
  },
};
