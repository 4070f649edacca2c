import type { CommandSpec } from './command-spec.js';

/** Clients choose their LIST parser from this; "UNIX Type: L8" is what they all understand. */
export const SYST: CommandSpec = { verb: 'SYST', syntax: 'SYST', availability: 'any', run: () => ({ code: 215, text: 'UNIX Type: L8' }) };
