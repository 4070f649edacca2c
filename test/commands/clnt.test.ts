import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { cleanClientName } from '../../src/commands/clnt.js';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, writeHomeFile, type TestServer } from '../helpers/server.js';

// CLNT: the client software names itself; the name (cleaned, bounded) is in the session's log lines and in its
// login and transfer audit records, where an operator looks when a partner's tool misbehaves.

type Line = Record<string, unknown>;
const PASSWORD = 'clnt-secret';

describe('CLNT', () => {
  let t: TestServer;
  const clients: ControlClient[] = [];
  const audits = (event: string, sid?: unknown): Line[] => t.logs().filter((l) => l.audit === true && l.event === event && (sid === undefined || l.sid === sid));
  const sidOf = (c: ControlClient): unknown => {
    const port = (c.socket.localPort ?? 0);
    return audits('connect').find((l) => l.port === port)?.sid;
  };
  const connect = async (): Promise<ControlClient> => {
    const c = await ControlClient.connect(t.port);
    clients.push(c);
    assert.equal((await c.read())?.code, 220);
    return c;
  };

  before(async () => {
    t = await startTestServer({ users: [{ name: 'alice', password: PASSWORD }], config: { log: { level: 'debug' }, limits: { maxClientNameChars: 40 } } });
  });
  after(async () => {
    for (const c of clients) c.close();
    await t?.close();
  });

  it('is answered 200 before AUTH, before login and after it, and is listed in FEAT', async () => {
    const c = await connect();
    assert.equal((await c.send('CLNT curl 7.88')).code, 200, 'before AUTH TLS');
    await c.authTls();
    assert.equal((await c.send('CLNT lftp 4.9')).code, 200, 'before login');
    await c.send('PBSZ 0');
    await c.send('PROT P');
    await c.send('USER alice');
    assert.equal((await c.send(`PASS ${PASSWORD}`)).code, 230);
    assert.equal((await c.send('CLNT FileZilla 3.66.4')).code, 200, 'after login');
    assert.equal((await c.send('CLNT')).code, 501, 'a name is required');
    assert.equal((await c.send('CLNT \u0007\u001b')).code, 501, 'nothing left after cleaning');
    const feat = await c.send('FEAT');
    assert.match(feat.text, /^ CLNT$/m);
  });

  it('puts the name in the login and transfer audit records and in the session log lines', async () => {
    const body = randomBytes(10_000);
    await writeHomeFile(t, 'alice', 'report.bin', body);
    const c = await connect();
    const sid = sidOf(c);
    assert.equal(typeof sid, 'string');
    await c.authTls();
    assert.equal((await c.send('CLNT PartnerEDI/2.1 (build 77)')).code, 200);
    await c.send('PBSZ 0');
    await c.send('PROT P');
    await c.send('USER alice');
    assert.equal((await c.send(`PASS ${PASSWORD}`)).code, 230);

    const downPort = await c.epsv();
    c.write('RETR report.bin\r\n');
    const down = c.dataConnect(downPort);
    assert.equal((await c.read())?.code, 150);
    assert.equal((await c.read())?.code, 226);
    assert.equal((await down.received).length, body.length);

    const upPort = await c.epsv();
    const up = c.dataConnect(upPort);
    assert.equal((await c.send('STOR copy.bin')).code, 150);
    await up.upload(body);
    assert.equal((await c.read())?.code, 226);

    const login = audits('login', sid);
    assert.equal(login.length, 1);
    assert.equal(login[0]!.client, 'PartnerEDI/2.1 (build 77)');
    const transfers = audits('transfer', sid);
    assert.deepEqual(transfers.map((r) => [r.direction, r.client]), [
      ['download', 'PartnerEDI/2.1 (build 77)'],
      ['upload', 'PartnerEDI/2.1 (build 77)'],
    ]);
    const commandLines = t.logs().filter((l) => l.sid === sid && l.msg === 'command');
    const after = commandLines.filter((l) => l.client === 'PartnerEDI/2.1 (build 77)');
    assert.ok(after.length >= 5, 'commands after CLNT are logged with the client name');
    assert.ok(commandLines.some((l) => l.client === undefined), 'and those before it without');

    // A later CLNT replaces the name; it is not added a second time.
    assert.equal((await c.send('CLNT Other 1.0')).code, 200);
    await c.send('NOOP');
    const last = t.logs().filter((l) => l.sid === sid && l.msg === 'command').at(-1)!;
    assert.equal(last.client, 'Other 1.0');
    assert.equal(JSON.stringify(last).match(/"client"/g)?.length, 1);
  });

  it('strips control characters and bidirectional overrides, and bounds the length', async () => {
    const c = await connect();
    const sid = sidOf(c);
    assert.equal((await c.send(`CLNT Evil\u0007Client\u001b[31m\u202e\u0085 ${'x'.repeat(100)}`)).code, 200);
    assert.equal((await c.login('alice', PASSWORD)).code, 230);
    const record = audits('login', sid).at(-1);
    assert.equal(record?.client, `EvilClient[31m ${'x'.repeat(40 - 'EvilClient[31m '.length)}`);
    assert.equal((record!.client as string).length, 40);
  });

  it('cleanClientName folds whitespace and counts code points, not UTF-16 units', () => {
    assert.equal(cleanClientName('  a\t\tb  ', 10), 'a b');
    assert.equal(cleanClientName('😀😀😀', 2), '😀😀');
    assert.equal(cleanClientName('\u0000\u001f\u007f\u009f', 10), '');
  });
});
