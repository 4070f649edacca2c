import { FtpError } from '../errors.js';
import type { CommandSpec } from './command-spec.js';

/**
 * Active mode is off: the server connecting out is what FTP bounce attacks abuse, and passive mode with session
 * binding covers every client a partner uses.
 */
function refuse(): never {
  throw new FtpError(502, 'Active mode is disabled on this server; use PASV or EPSV', { reason: 'active_disabled' });
}

export const PORT: CommandSpec = { verb: 'PORT', syntax: 'PORT h1,h2,h3,h4,p1,p2', availability: 'loggedIn', needsArg: true, run: refuse };
export const EPRT: CommandSpec = { verb: 'EPRT', syntax: 'EPRT |af|addr|port|', availability: 'loggedIn', needsArg: true, run: refuse };
