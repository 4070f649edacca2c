import { setTimeout as sleep } from 'node:timers/promises';
import { FtpError } from '../errors.js';
import { CidrSet } from '../defender/cidr.js';
import type { User } from '../auth/users-file.js';
import type { Session } from '../control/session.js';
import { accessOf } from '../access/login-user.js';
import type { CommandSpec } from './command-spec.js';
import { sessionFacts } from './event-facts.js';

export const PASS: CommandSpec = {
  verb: 'PASS',
  syntax: 'PASS <password>',
  availability: 'any',
  async run(s, arg) {
    if (s.phase.kind === 'ready') return { code: 230, text: 'Already logged in' };
    // Policy first: a password sent in plaintext is told why it is refused, whether or not USER was accepted.
    s.requireTlsForLogin();
    if (s.phase.kind !== 'needPass') throw new FtpError(503, 'Login with USER first');
    const name = s.phase.userName;
    let admission;
    try {
      admission = s.server.loginThrottle.admit(name, s.peerIp);
    } catch (err) {
      // The name is failing from many addresses: no password check; counted like a failure for this connection.
      if (err instanceof FtpError) return failLogin(s, name, err.reason, err);
      throw err;
    }
    let result;
    try {
      result = await s.server.users.authenticate(name, arg, admission.priority, { tlsVersion: s.security.kind === 'tls' ? s.security.info.version : null });
    } finally {
      admission.release();
    }
    if (!result.ok) return failLogin(s, name, result.reason);
    const user = result.user;
    if (user.allowedNetworks.length > 0 && !new CidrSet(user.allowedNetworks).has(s.peerIp)) {
      return failLogin(s, name, 'network_not_allowed');
    }
    if (user.clientCertificates.length > 0) {
      const peerCert = s.security.kind === 'tls' ? s.security.socket.getPeerCertificate() : null;
      const fingerprint = peerCert?.fingerprint256?.replace(/:/g, '').toLowerCase();
      if (fingerprint === undefined || !user.clientCertificates.includes(fingerprint)) return failLogin(s, name, 'client_certificate');
    }
    const storage = s.server.createStorage(user, { sid: s.id, ip: s.peerIp });
    await storage.ready;
    if (!(await s.server.acquireLogin(s, name, user))) {
      s.phase = { kind: 'greeted' };
      s.server.metrics.login('refused');
      s.server.audit('login_failed', { sid: s.id, ip: s.peerIp, user: name, reason: 'too_many_sessions' });
      s.server.events.publish({ ...sessionFacts(s), event: 'login_failed', user: name, groups: [...accessOf(user).user.groups], result: 'refused', code: 530, reason: 'too_many_sessions' });
      throw new FtpError(530, 'Too many sessions for this user', { reason: 'user_session_limit' });
    }
    s.completeLogin(user, storage);
    s.server.loginThrottle.succeeded(name, s.peerIp);
    s.server.metrics.login('ok');
    logDataSessionReuseOverride(s, user);
    const tls = s.security.kind === 'tls' ? s.security.info : null;
    s.server.audit('login', { sid: s.id, ip: s.peerIp, user: name, protocol: tls?.version, cipher: tls?.cipher, client: s.clientName ?? undefined });
    s.server.events.publish({ ...sessionFacts(s), event: 'login', tlsVersion: tls?.version ?? null, tlsCipher: tls?.cipher ?? null, code: 230 });
    return { code: 230, text: 'Login successful' };
  },
};

/**
 * A user whose requireDataSessionReuse differs from tls.requireDataSessionReuse is said so at every login, so an
 * exception made for one partner's client stays visible in the log rather than only in the users file.
 */
function logDataSessionReuseOverride(s: Session, user: User): void {
  const own = user.requireDataSessionReuse;
  if (own === null || own === s.server.config.tls.requireDataSessionReuse) return;
  const fields = { event: 'data_session_reuse_override', user: user.name, requireDataSessionReuse: own };
  if (own) s.log.info(fields, 'user requires TLS session reuse on data connections');
  else s.log.warn(fields, 'user exempt from TLS session reuse on data connections');
}

async function failLogin(s: Session, name: string, reason: string, reply = new FtpError(530, 'Login incorrect', { reason })): Promise<never> {
  s.phase = { kind: 'greeted' };
  s.failedLogins++;
  // Every name counts alike, existing or not, so the throttle cannot tell an attacker which names exist.
  s.server.loginThrottle.failed(name);
  s.server.metrics.login('failed');
  s.server.defender.record(s.peerIp, reason === 'unknown_user' ? 'unknownUser' : 'failedLogin', { user: name });
  s.server.audit('login_failed', { sid: s.id, ip: s.peerIp, user: name, reason, client: s.clientName ?? undefined });
  s.server.events.publish({ ...sessionFacts(s), event: 'login_failed', user: name, result: 'refused', code: reply.code, reason });
  // A fixed delay before answering slows password guessing without holding an argon2 slot.
  await sleep(s.server.config.limits.failedLoginDelayMs);
  if (s.failedLogins >= s.server.config.limits.maxFailedLoginsPerSession) {
    s.send({ code: reply.code, text: reply.message });
    s.send({ code: 421, text: 'Too many failed logins, closing connection' });
    s.close('too many failed logins');
    throw new FtpError(reply.code, reply.message, { reason: 'too_many_failures' });
  }
  throw reply;
}
