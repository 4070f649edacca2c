import { FtpError } from '../errors.js';
import type { CommandSpec } from './command-spec.js';

/**
 * CLNT (FileZilla, WinSCP and others send it; no RFC): the client software's name, kept for the session's log lines
 * and its login and transfer audit records. Accepted at any time after the greeting. The text is the client's, so
 * control characters (which could forge log lines in text viewers) are dropped and the length is bounded.
 */
export const CLNT: CommandSpec = {
  verb: 'CLNT',
  syntax: 'CLNT <client name>',
  availability: 'any',
  needsArg: true,
  feat: 'CLNT',
  run(s, arg) {
    const name = cleanClientName(arg, s.server.config.limits.maxClientNameChars);
    if (name === '') throw new FtpError(501, 'Syntax: CLNT <client name>', { reason: 'empty_client_name' });
    s.setClientName(name);
    return { code: 200, text: 'Noted' };
  },
};

/** C0, DEL and C1 controls and bidirectional overrides removed, whitespace runs folded, cut to `maxChars` code points. */
export function cleanClientName(raw: string, maxChars: number): string {
  const visible = raw
    .replace(/\s+/g, ' ')
    .replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g, '')
    .trim();
  return [...visible].slice(0, maxChars).join('');
}
