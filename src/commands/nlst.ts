import type { CommandSpec } from './command-spec.js';
import { listTarget, sendListing } from './listing.js';

export const NLST: CommandSpec = {
  verb: 'NLST',
  syntax: 'NLST [<path>]',
  availability: 'loggedIn',
  async run(s, arg) {
    const { entries } = await listTarget(s, arg);
    return sendListing(s, entries.map((e) => e.name));
  },
};
