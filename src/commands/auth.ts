import { FtpError } from '../errors.js';
import type { CommandSpec } from './command-spec.js';

/** RFC 4217 §4: AUTH TLS upgrades the control connection in place. TLS-C and SSL are accepted aliases. */
export const AUTH: CommandSpec = {
  verb: 'AUTH',
  syntax: 'AUTH TLS',
  availability: 'any',
  needsArg: true,
  feat: 'AUTH TLS',
  async run(s, arg) {
    const mech = arg.trim().toUpperCase();
    // Implicit FTPS: the connection was TLS before the greeting; a second handshake inside it makes no sense.
    if (s.mode === 'implicit') throw new FtpError(503, 'AUTH not needed: this implicit FTPS connection is already protected by TLS; send PBSZ 0 and PROT P', { reason: 'auth_on_implicit' });
    if (!['TLS', 'TLS-C', 'SSL'].includes(mech)) throw new FtpError(504, `AUTH ${mech} not supported; use AUTH TLS`);
    if (s.security.kind !== 'plain') throw new FtpError(503, 'Already using TLS');
    if (s.phase.kind === 'ready') throw new FtpError(503, 'AUTH must come before login');
    await s.upgradeToTls();
    // Historic AUTH SSL implied a protected data channel; clients that send it expect that.
    if (mech === 'SSL' && s.isTls) s.params = { ...s.params, pbsz: true, prot: 'P' };
  },
};
