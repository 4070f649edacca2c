import type { Session } from '../control/session.js';
import { FtpError } from '../errors.js';
import type { CommandSpec } from './command-spec.js';

/** RFC 3659 §5: REST STREAM — the byte offset for the next RETR or STOR. */
export const REST: CommandSpec = {
  verb: 'REST',
  syntax: 'REST <offset>',
  availability: 'loggedIn',
  needsArg: true,
  feat: 'REST STREAM',
  run(s, arg) {
    const text = arg.trim();
    if (!/^\d{1,15}$/.test(text)) throw new FtpError(501, 'REST needs a byte offset');
    const offset = Number(text);
    s.params = { ...s.params, restOffset: offset };
    return { code: 350, text: `Restarting at ${offset}. Send STORE or RETRIEVE to initiate transfer` };
  },
};

/** A REST offset holds for the next transfer command only: each of them takes it (0 when none was given). */
export function takeRestOffset(s: Session): number {
  const offset = s.params.restOffset;
  s.params = { ...s.params, restOffset: 0 };
  return offset;
}
