import { FtpError } from '../errors.js';
import type { CommandSpec } from './command-spec.js';

export const HELP: CommandSpec = {
  verb: 'HELP',
  syntax: 'HELP [<command>]',
  availability: 'any',
  run(s, arg) {
    const wanted = arg.trim().toUpperCase();
    if (wanted !== '') {
      const spec = s.server.commands.get(wanted);
      // HELP itself is implemented; a verb it has no help for is an unsupported parameter (RFC 959 504), not 502.
      if (spec === undefined) throw new FtpError(504, `Unknown command ${wanted}`, { reason: 'help_unknown_verb' });
      return { code: 214, text: `Syntax: ${spec.syntax}` };
    }
    const verbs = [...s.server.commands.keys()].sort();
    const rows: string[] = [];
    for (let i = 0; i < verbs.length; i += 8) rows.push(verbs.slice(i, i + 8).map((v) => v.padEnd(5)).join(' '));
    return { code: 214, text: ['The following commands are recognized:', ...rows, 'Help OK'] };
  },
};
