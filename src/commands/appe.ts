import type { CommandSpec } from './command-spec.js';
import { requireUpload, resolveArg } from './path-args.js';
import { takeRestOffset } from './rest.js';
import { runUpload } from './upload-command.js';

export const APPE: CommandSpec = {
  verb: 'APPE',
  syntax: 'APPE <path>',
  availability: 'loggedIn',
  needsArg: true,
  async run(s, arg) {
    takeRestOffset(s);
    const path = resolveArg(s, arg);
    await requireUpload(s, path);
    return runUpload(s, path, { kind: 'append' }, 'Ok to send data', () => ({ code: 226, text: 'Transfer complete' }));
  },
};
