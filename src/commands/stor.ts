import type { CommandSpec } from './command-spec.js';
import { requireUpload, resolveArg } from './path-args.js';
import { takeRestOffset } from './rest.js';
import { runUpload } from './upload-command.js';

export const STOR: CommandSpec = {
  verb: 'STOR',
  syntax: 'STOR <path>',
  availability: 'loggedIn',
  needsArg: true,
  async run(s, arg) {
    const offset = takeRestOffset(s);
    const path = resolveArg(s, arg);
    await requireUpload(s, path);
    return runUpload(s, path, offset > 0 ? { kind: 'resume', offset } : { kind: 'replace' }, 'Ok to send data', () => ({ code: 226, text: 'Transfer complete' }));
  },
};
