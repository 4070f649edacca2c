import { isIPv4 } from 'node:net';
import type { Session } from '../control/session.js';
import { canonicalIp } from '../defender/cidr.js';
import { FtpError } from '../errors.js';
import { parseEprtArg, parsePortArg } from '../protocol/address-text.js';
import type { Reply } from '../protocol/reply.js';
import type { CommandSpec } from './command-spec.js';

/** Ports below this are privileged services: a data connection to them is an FTP bounce (RFC 2577 §3). */
const FIRST_UNPRIVILEGED_PORT = 1024;

type ActiveVerb = 'PORT' | 'EPRT';

/**
 * Active mode is off by default (activeMode.enabled): the server connecting out is what FTP bounce attacks abuse, and
 * passive mode with session binding covers every client a partner uses. When on, the server connects only to the
 * control connection's own address and never to a privileged port (RFC 2577 §3), and it connects only after the
 * transfer command's 150, on the control session's TLS context.
 */
function active(verb: ActiveVerb, syntax: string) {
  return (s: Session, arg: string): Reply => {
    if (!s.server.config.activeMode.enabled) {
      throw new FtpError(502, 'Active mode is disabled on this server; use PASV or EPSV', { reason: 'active_disabled' });
    }
    // RFC 2428 §4: after EPSV ALL every other way of setting up a data connection is refused.
    if (s.data.epsvAll) throw new FtpError(503, 'EPSV ALL in effect: use EPSV', { reason: 'epsv_all' });
    const target = parseTarget(verb, arg, s);
    if (target === null) throw new FtpError(501, `Syntax: ${syntax}`, { reason: 'bad_address' });
    const peer = canonicalIp(s.peerIp);
    const problem = target.host !== peer ? 'foreign_address' : target.port < FIRST_UNPRIVILEGED_PORT ? 'privileged_port' : null;
    if (problem !== null) {
      s.log.warn({ event: 'active_refused', verb, reason: problem, target: target.host, targetPort: target.port }, 'active mode target refused');
      s.server.defender.record(s.peerIp, 'protocolViolation', { kind: `${verb.toLowerCase()}_${problem}` });
      throw new FtpError(500, `Illegal ${verb} command`, { reason: problem });
    }
    s.data.openActive(target.host, target.port);
    return { code: 200, text: `${verb} command successful; consider using EPSV` };
  };
}

function parseTarget(verb: ActiveVerb, arg: string, s: Session): { host: string; port: number } | null {
  if (verb === 'PORT') {
    const t = parsePortArg(arg);
    const host = t === null ? null : canonicalIp(t.host);
    return t === null || host === null ? null : { host, port: t.port };
  }
  // RFC 2428 §2: a well-formed EPRT for a network protocol we do not speak is 522 naming the one we do.
  const ours = isIPv4(canonicalIp(s.peerIp) ?? '') ? 1 : 2;
  const family = /^([\x21-\x7e])(\d{1,3})\1/.exec(arg.trim())?.[2];
  if (family !== undefined && family !== '1' && family !== '2') throw new FtpError(522, `Network protocol not supported, use (${ours})`, { reason: 'eprt_family' });
  const t = parseEprtArg(arg.trim());
  if (t === null) return null;
  const host = canonicalIp(t.host);
  if (host === null || (t.family === 1) !== isIPv4(t.host)) return null;
  if (t.family !== ours) throw new FtpError(522, `Network protocol not supported, use (${ours})`, { reason: 'eprt_family' });
  return { host, port: t.port };
}

export const PORT: CommandSpec = { verb: 'PORT', syntax: 'PORT h1,h2,h3,h4,p1,p2', availability: 'loggedIn', needsArg: true, run: active('PORT', 'PORT h1,h2,h3,h4,p1,p2') };
export const EPRT: CommandSpec = {
  verb: 'EPRT',
  syntax: 'EPRT |af|addr|port|',
  availability: 'loggedIn',
  needsArg: true,
  feat: (s) => (s.server.config.activeMode.enabled ? 'EPRT' : null),
  run: active('EPRT', 'EPRT |af|addr|port|'),
};
