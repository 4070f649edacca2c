import type { Session } from '../control/session.js';
import { formatListLine } from '../storage/listing-format.js';
import type { CommandSpec } from './command-spec.js';
import { openListTarget } from './listing.js';

/** RFC 959 STAT: server status without an argument (also during a transfer), a listing over the control connection with one. */
export const STAT: CommandSpec = {
  verb: 'STAT',
  syntax: 'STAT [<path>]',
  availability: 'any',
  duringTransfer: true,
  async run(s, arg) {
    if (arg.trim() === '' || s.data.busy) return { code: 211, text: statusLines(s) };
    const target = await openListTarget(s, arg);
    const now = new Date();
    const max = s.server.config.limits.maxStatListEntries;
    const lines: string[] = [];
    try {
      // Read only as far as the reply shows: a huge directory costs maxStatListEntries entries, not all of them.
      for await (const e of target.entries()) {
        if (lines.length >= max) break;
        lines.push(formatListLine(e, now));
      }
    } finally {
      await target.close();
    }
    return { code: 213, text: ['Status follows:', ...lines, 'End of status'] };
  },
};

function statusLines(s: Session): string[] {
  const tls = s.security.kind === 'tls' ? `${s.security.info.version} ${s.security.info.cipher}` : 'none';
  return [
    'ftpsd status:',
    `Connected from ${s.peerIp}`,
    s.phase.kind === 'ready' ? `Logged in as ${s.phase.user.name}` : 'Not logged in',
    `TLS: ${tls}; data protection: ${s.params.prot === 'P' ? 'private' : 'clear'}`,
    `TYPE: ${s.params.type === 'A' ? 'ASCII' : 'BINARY'}; STRUcture: File; transfer MODE: Stream`,
    s.data.busy ? 'A transfer is in progress' : 'No data connection',
    'End of status',
  ];
}
