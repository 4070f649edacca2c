import type { CommandSpec } from './command-spec.js';

/** RFC 959 §4.1.3: the transfer command is answered 426, then ABOR 226; with nothing running, 225. */
export const ABOR: CommandSpec = {
  verb: 'ABOR',
  syntax: 'ABOR',
  availability: 'loggedIn',
  duringTransfer: true,
  async run(s) {
    const aborted = await s.data.abort();
    if (!aborted) return { code: 225, text: 'No transfer to abort' };
    // The transfer command still has work after its data connection closed (an upload discards or keeps its bytes);
    // its 426 must reach the client before this 226.
    await s.settled();
    return { code: 226, text: 'Abort successful' };
  },
};
