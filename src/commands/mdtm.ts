import { formatMdtm, parseMfmtTime } from '../storage/listing-format.js';
import type { CommandSpec } from './command-spec.js';
import { requirePermission, requireVisible, resolveArg, statRegularFile } from './path-args.js';

/** RFC 3659 §3. The non-standard "MDTM <time> <path>" that some clients use to set the time is accepted too. */
export const MDTM: CommandSpec = {
  verb: 'MDTM',
  syntax: 'MDTM <path>',
  availability: 'loggedIn',
  needsArg: true,
  feat: 'MDTM',
  async run(s, arg) {
    const setForm = /^(\d{14}(?:\.\d{1,3})?) (.+)$/.exec(arg);
    if (setForm !== null) {
      const time = parseMfmtTime(setForm[1]!);
      if (time !== null) {
        const path = resolveArg(s, setForm[2]!);
        requirePermission(s, 'overwrite', path);
        await s.storage.setMtime(path, time);
        return { code: 213, text: formatMdtm(time) };
      }
    }
    const path = resolveArg(s, arg);
    requireVisible(s, path);
    const info = await statRegularFile(s, path);
    return { code: 213, text: formatMdtm(info.mtime) };
  },
};
