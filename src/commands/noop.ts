import type { CommandSpec } from './command-spec.js';

export const NOOP: CommandSpec = { verb: 'NOOP', syntax: 'NOOP', availability: 'any', run: () => ({ code: 200, text: 'NOOP ok' }) };
