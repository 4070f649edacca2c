import { formatListLine } from '../storage/listing-format.js';
import type { CommandSpec } from './command-spec.js';
import { listTarget, sendListing } from './listing.js';

export const LIST: CommandSpec = {
  verb: 'LIST',
  syntax: 'LIST [<path>]',
  availability: 'loggedIn',
  async run(s, arg) {
    const { entries } = await listTarget(s, arg);
    const now = new Date();
    return sendListing(s, entries.map((e) => formatListLine(e, now)));
  },
};
