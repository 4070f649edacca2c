import type { CommandSpec } from './command-spec.js';
import { openListTarget, sendListing } from './listing.js';

/** RFC 959 NLST: names only, so entries are not looked at one by one (a large directory lists fast). */
export const NLST: CommandSpec = {
  verb: 'NLST',
  syntax: 'NLST [<path>]',
  availability: 'loggedIn',
  async run(s, arg) {
    const target = await openListTarget(s, arg);
    return sendListing(s, target, target.names());
  },
};
