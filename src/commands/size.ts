import type { CommandSpec } from './command-spec.js';
import { requireVisible, resolveArg, statRegularFile } from './path-args.js';

/** RFC 3659 §4: the size of a file as RETR in the current TYPE would send it; we report the stored bytes. */
export const SIZE: CommandSpec = {
  verb: 'SIZE',
  syntax: 'SIZE <path>',
  availability: 'loggedIn',
  needsArg: true,
  feat: 'SIZE',
  async run(s, arg) {
    const path = resolveArg(s, arg);
    requireVisible(s, path);
    const info = await statRegularFile(s, path);
    return { code: 213, text: String(info.size) };
  },
};
