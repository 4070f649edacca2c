import type { CommandSpec } from './command-spec.js';

export const ALLO: CommandSpec = { verb: 'ALLO', syntax: 'ALLO <bytes>', availability: 'loggedIn', run: () => ({ code: 202, text: 'No storage allocation necessary' }) };
