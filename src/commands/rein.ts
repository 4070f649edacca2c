import type { CommandSpec } from './command-spec.js';

/** RFC 959 REIN: log out but keep the connection (and its TLS). */
export const REIN: CommandSpec = {
  verb: 'REIN',
  syntax: 'REIN',
  availability: 'any',
  run(s) {
    s.reinitialize();
    return { code: 220, text: 'Ready for new user' };
  },
};
