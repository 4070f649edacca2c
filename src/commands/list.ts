import { formatListLine } from '../storage/listing-format.js';
import type { CommandSpec } from './command-spec.js';
import { formatLines, openListTarget, sendListing } from './listing.js';

export const LIST: CommandSpec = {
  verb: 'LIST',
  syntax: 'LIST [<path>]',
  availability: 'loggedIn',
  async run(s, arg) {
    const target = await openListTarget(s, arg);
    const now = new Date();
    return sendListing(s, target, formatLines(target.entries(), (e) => formatListLine(e, now)));
  },
};
