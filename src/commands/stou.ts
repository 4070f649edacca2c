import type { CommandSpec } from './command-spec.js';
import { requirePermission, resolveArg } from './path-args.js';
import { takeRestOffset } from './rest.js';
import { runUpload } from './upload-command.js';

/** RFC 959 STOU / RFC 1123 §4.1.2.9: the reply names the file that was created. */
export const STOU: CommandSpec = {
  verb: 'STOU',
  syntax: 'STOU [<name hint>]',
  availability: 'loggedIn',
  async run(s, arg) {
    takeRestOffset(s);
    const hint = arg.trim() === '' ? 'file' : arg.trim();
    const dir = resolveArg(s, '.');
    requirePermission(s, 'upload', dir);
    const name = await s.storage.uniqueName(dir, hint.split('/').pop() ?? 'file');
    const path = resolveArg(s, name);
    return runUpload(s, path, { kind: 'replace' }, `FILE: ${name}`, () => ({ code: 226, text: `Transfer complete (unique file name: ${name})` }));
  },
};
