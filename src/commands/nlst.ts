import type { CommandSpec } from './command-spec.js';
import { openListTarget, sendListing } from './listing.js';

export const NLST: CommandSpec = {
  verb: 'NLST',
  syntax: 'NLST [<path>]',
  availability: 'loggedIn',
  async run(s, arg) {
    return sendListing(s, await openListTarget(s, arg), (e) => e.name);
  },
};
