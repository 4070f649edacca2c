import { randomBytes } from 'node:crypto';
import { FtpsProbe, ProbeError } from './ftps-probe.js';
import type { CheckResult } from './doctor-report.js';

export interface SessionCheckOptions {
  host: string;
  port: number;
  /** Without credentials the session stops after AUTH TLS. */
  user?: string;
  password?: string;
  timeoutMs: number;
  now?: number;
}

const RESUME_FIX =
  'the data connection must reach the same ftpsd process as the control connection and offer its TLS session: ' +
  'a load balancer or NAT that sends passive ports to another node, or a TLS-terminating proxy, breaks this. ' +
  'Forward the passive range straight to this server.';

/**
 * A real session against the running server, as a partner's client does it: AUTH TLS, login, PBSZ 0 / PROT P, EPSV,
 * then a small upload and download (or a listing when the user may not upload) on data connections that must resume
 * the control connection's TLS session.
 */
export async function checkSession(opts: SessionCheckOptions): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const target = `${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port}`;
  let probe: FtpsProbe;
  try {
    const { probe: p, greeting } = await FtpsProbe.connect({ host: opts.host, port: opts.port, timeoutMs: opts.timeoutMs });
    probe = p;
    if (greeting.code !== 220) {
      p.close();
      return [{ check: 'control connection', status: 'fail', detail: `${target} greeted with: ${greeting.text}`, fix: greeting.code === 421 ? 'the server refuses this address (banned or at its session limit): see its log' : 'is this an ftpsd server? check listen.port' }];
    }
    out.push({ check: 'control connection', status: 'pass', detail: `${target} answered 220` });
  } catch (err) {
    return [{ check: 'control connection', status: 'fail', detail: (err as Error).message, fix: `start the server (ftpsd serve) or check listen.host/listen.port; doctor connects to ${target}` }];
  }

  try {
    await runSteps(probe, opts, out);
  } catch (err) {
    const step = err instanceof ProbeError ? err.step : 'session';
    out.push({ check: `session: ${step}`, status: 'fail', detail: (err as Error).message, fix: 'see the server log for this session' });
  } finally {
    probe.close();
  }
  return out;
}

async function runSteps(probe: FtpsProbe, opts: SessionCheckOptions, out: CheckResult[]): Promise<void> {
  const { reply, socket } = await probe.authTls();
  if (socket === null) {
    out.push({ check: 'AUTH TLS', status: 'fail', detail: `answered: ${reply.text}`, fix: 'the server must offer explicit TLS (RFC 4217)' });
    return;
  }
  const served = socket.getPeerX509Certificate();
  const cipher = socket.getCipher();
  const expired = served !== undefined && Date.parse(served.validTo) <= (opts.now ?? Date.now());
  out.push({
    check: 'AUTH TLS',
    status: expired ? 'fail' : 'pass',
    detail: `${socket.getProtocol() ?? 'TLS'} ${cipher.name}${served !== undefined ? `, served certificate valid until ${new Date(served.validTo).toISOString()}${expired ? ' (EXPIRED)' : ''}` : ''}`,
    fix: expired ? 'the running server hands out an expired certificate: renew it and send SIGHUP' : undefined,
  });

  if (opts.user === undefined || opts.password === undefined) {
    out.push({ check: 'login and transfer', status: 'skip', detail: 'no user given', fix: 'run `ftpsd doctor --user NAME` with the password on standard input' });
    return;
  }
  const user = await probe.send(`USER ${opts.user}`, 'USER');
  const pass = user.code === 331 ? await probe.send(`PASS ${opts.password}`, 'PASS') : user;
  if (pass.code !== 230) {
    out.push({ check: 'login', status: 'fail', detail: `${opts.user}: ${pass.text}`, fix: 'check the user name and password (`ftpsd user passwd NAME`); after editing the users file send SIGHUP' });
    return;
  }
  out.push({ check: 'login', status: 'pass', detail: `logged in as ${opts.user}` });

  const pbsz = await probe.send('PBSZ 0');
  const prot = await probe.send('PROT P');
  if (pbsz.code !== 200 || prot.code !== 200) {
    out.push({ check: 'PROT P', status: 'fail', detail: `PBSZ: ${pbsz.text}; PROT: ${prot.text}`, fix: 'the server must accept private data connections (RFC 4217 section 9)' });
    return;
  }

  const name = `ftpsd-doctor-${randomBytes(6).toString('hex')}.txt`;
  const payload = Buffer.from(`ftpsd doctor ${new Date(opts.now ?? Date.now()).toISOString()}\n`);
  const up = await probe.transfer(`STOR ${name}`, payload);
  if (up.preliminary.code === 550 || up.preliminary.code === 553 || up.preliminary.code === 532) {
    const list = await probe.transfer('LIST', null);
    judgeTransfer('data connection (LIST)', list, out, null);
    return;
  }
  if (!judgeTransfer('data connection (upload)', up, out, null)) return;
  const down = await probe.transfer(`RETR ${name}`, null);
  judgeTransfer('data connection (download)', down, out, payload);
  await probe.send(`DELE ${name}`);
}

function judgeTransfer(
  check: string,
  r: Awaited<ReturnType<FtpsProbe['transfer']>>,
  out: CheckResult[],
  expected: Buffer | null,
): boolean {
  const final = r.final;
  if (final === null) {
    out.push({ check, status: 'fail', detail: `refused: ${r.preliminary.text}`, fix: 'see the server log for this session' });
    return false;
  }
  if (final.code === 425 && /not resumed/i.test(final.text)) {
    out.push({ check, status: 'fail', detail: `the server refused the data connection: ${final.text}`, fix: RESUME_FIX });
    return false;
  }
  if (r.data === null || final.code !== 226) {
    const hint = final.code === 425 && /client did not connect/i.test(final.text)
      ? 'the passive port was not reachable: open pasv.minPort..pasv.maxPort in the firewall'
      : 'see the server log for this session';
    out.push({ check, status: 'fail', detail: `${final.text}`, fix: hint });
    return false;
  }
  if (!r.data.resumed) {
    out.push({ check, status: 'fail', detail: 'the data connection did not resume the control TLS session (full handshake)', fix: RESUME_FIX });
    return false;
  }
  if (expected !== null && !r.data.received.equals(expected)) {
    out.push({ check, status: 'fail', detail: `downloaded ${r.data.received.length} bytes, uploaded ${expected.length}: content differs`, fix: 'see the server log; check storage settings' });
    return false;
  }
  out.push({ check, status: 'pass', detail: `226 on a data connection that resumed the control TLS session (${r.data.received.length > 0 ? `${r.data.received.length} bytes received` : 'sent'})` });
  return true;
}
