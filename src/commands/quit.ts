import type { CommandSpec } from './command-spec.js';

export const QUIT: CommandSpec = {
  verb: 'QUIT',
  syntax: 'QUIT',
  availability: 'any',
  duringTransfer: true,
  async run(s) {
    // RFC 959: a transfer in progress is not cut short by QUIT only in theory; a partner's script that quits
    // mid-transfer wants the session gone, and an incomplete upload is discarded, never committed.
    await s.data.abort();
    s.send({ code: 221, text: 'Goodbye' });
    s.close('quit');
  },
};
