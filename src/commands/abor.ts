import type { CommandSpec } from './command-spec.js';

/** RFC 959 §4.1.3: the transfer command is answered 426, then ABOR 226; with nothing running, 225. */
export const ABOR: CommandSpec = {
  verb: 'ABOR',
  syntax: 'ABOR',
  availability: 'loggedIn',
  duringTransfer: true,
  async run(s) {
    const aborted = await s.data.abort();
    return aborted ? { code: 226, text: 'Abort successful' } : { code: 225, text: 'No transfer to abort' };
  },
};
