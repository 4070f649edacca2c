import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ALL_COMMANDS, buildRegistry } from '../../src/commands/registry.js';
import { ControlClient, type FtpReply } from '../helpers/control-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// What a client sees of the control-channel verbs: FEAT, security commands, parameters, errors, HELP, STAT, QUIT.

const USERS = [{ name: 'alice', password: 'alice-cmd-pw' }];
const clients: ControlClient[] = [];

async function connect(port: number): Promise<ControlClient> {
  const c = await ControlClient.connect(port);
  clients.push(c);
  assert.equal((await c.read())?.code, 220, 'greeting');
  return c;
}

async function loggedIn(port: number): Promise<ControlClient> {
  const c = await ControlClient.loggedIn(port, 'alice', 'alice-cmd-pw');
  clients.push(c);
  return c;
}

async function code(c: ControlClient, line: string): Promise<number> {
  return (await c.send(line)).code;
}

function featureLines(r: FtpReply): string[] {
  assert.equal(r.code, 211);
  assert.ok(r.lines.length >= 2);
  assert.match(r.lines[0]!, /^211-/);
  assert.match(r.lines.at(-1)!, /^211 /);
  return r.lines.slice(1, -1).map((l) => l.trim());
}

describe('control commands', () => {
  let srv: TestServer;
  let clearData: TestServer;

  before(async () => {
    srv = await startTestServer({ users: USERS, config: { defender: { enabled: false } } });
    clearData = await startTestServer({ users: USERS, config: { defender: { enabled: false }, tls: { requireForData: false } } });
  });

  after(async () => {
    for (const c of clients) c.close();
    await srv?.close();
    await clearData?.close();
  });

  describe('FEAT', () => {
    const stringFeats = ALL_COMMANDS.flatMap((s) => (typeof s.feat === 'string' ? [s.feat] : []));
    const policyFeats = ALL_COMMANDS.filter((s) => typeof s.feat === 'function').length;

    it('lists exactly the features of the registered verbs, before AUTH as after login', async () => {
      const plain = await connect(srv.port);
      const before = featureLines(await plain.send('FEAT'));
      assert.ok(before.includes('AUTH TLS'), 'a client learns AUTH TLS before securing the connection (RFC 4217)');
      const c = await loggedIn(srv.port);
      const features = featureLines(await c.send('FEAT'));
      assert.deepEqual(new Set(before), new Set(features));
      for (const f of stringFeats) assert.ok(features.includes(f), `FEAT lists ${f}`);
      const extra = features.filter((f) => !stringFeats.includes(f));
      assert.ok(extra.length <= policyFeats, `FEAT lists features no verb declares: ${extra.join(', ')}`);
      assert.equal(new Set(features).size, features.length, 'no duplicates');
    });

    it('every advertised feature answers after login (no 500/502)', async () => {
      const c = await loggedIn(srv.port);
      const registry = buildRegistry();
      const probeArg: Record<string, string> = {
        AUTH: 'TLS', HOST: 'ftp.example.com', HASH: 'missing.bin', MDTM: 'missing.bin', MFMT: '20200101000000 missing.bin',
        MLST: '/', PBSZ: '0', PROT: 'P', REST: '0', SIZE: 'missing.bin',
      };
      const features = featureLines(await c.send('FEAT'));
      assert.ok(features.length > 0);
      for (const feature of features) {
        const word = feature.split(' ')[0]!;
        // Features that are options of OPTS (UTF8, RFC 2640) are probed through OPTS.
        const line = registry.has(word) ? `${word} ${probeArg[word] ?? ''}`.trim() : `OPTS ${word} ON`;
        const r = await c.send(line);
        assert.ok(r.code !== 500 && r.code !== 502, `${feature}: "${line}" answered ${r.text}`);
        assert.ok(r.code >= 200 && r.code < 600);
      }
    });
  });

  describe('security commands (RFC 2228, RFC 4217)', () => {
    it('PBSZ before AUTH is 503, PROT before PBSZ is 503', async () => {
      const c = await connect(srv.port);
      assert.equal(await code(c, 'PBSZ 0'), 503);
      assert.equal(await code(c, 'PROT P'), 503);
      await c.authTls();
      assert.equal(await code(c, 'PROT P'), 503, 'RFC 2228: PROT is refused until PBSZ');
      assert.equal(await code(c, 'PBSZ 0'), 200);
      assert.equal(await code(c, 'PROT P'), 200);
    });

    it('PROT C is refused with 534 by default, PROT S with 536', async () => {
      const c = await connect(srv.port);
      await c.authTls();
      await c.send('PBSZ 0');
      assert.equal(await code(c, 'PROT C'), 534);
      assert.equal(await code(c, 'PROT S'), 536);
      assert.equal(await code(c, 'PROT E'), 536);
    });

    it('PROT C is accepted when tls.requireForData is off', async () => {
      const c = await connect(clearData.port);
      await c.authTls();
      await c.send('PBSZ 0');
      assert.equal(await code(c, 'PROT C'), 200);
      const stat = await c.send('STAT');
      assert.match(stat.text, /data protection: clear/);
    });

    it('CCC is refused: 534 on TLS, 533 in plaintext', async () => {
      const plain = await connect(srv.port);
      assert.equal(await code(plain, 'CCC'), 533);
      const c = await connect(srv.port);
      await c.authTls();
      assert.equal(await code(c, 'CCC'), 534);
      assert.equal(await code(c, 'NOOP'), 200, 'the control connection stays encrypted and usable');
    });

    it('AUTH with an unknown mechanism is 504, a second AUTH TLS is 503', async () => {
      const c = await connect(srv.port);
      assert.equal(await code(c, 'AUTH KERBEROS_V4'), 504);
      assert.equal(await code(c, 'AUTH'), 501);
      await c.authTls();
      assert.equal(await code(c, 'AUTH TLS'), 503);
    });
  });

  describe('session state', () => {
    it('HOST is accepted before USER and refused after it with 503 (RFC 7151)', async () => {
      const c = await connect(srv.port);
      await c.authTls();
      assert.equal(await code(c, 'HOST ftp.example.com'), 220);
      assert.equal(await code(c, 'USER alice'), 331);
      assert.equal(await code(c, 'HOST ftp.example.com'), 503);
    });

    it('REIN logs out but keeps TLS', async () => {
      const c = await loggedIn(srv.port);
      assert.equal(await code(c, 'PWD'), 257);
      assert.equal(await code(c, 'REIN'), 220);
      assert.equal(await code(c, 'LIST'), 530);
      assert.equal(await code(c, 'PWD'), 530);
      const stat = await c.send('STAT');
      assert.match(stat.text, /Not logged in/);
      assert.match(stat.text, /TLS: TLSv1\.[23]/, 'still on TLS');
      assert.equal(await code(c, 'AUTH TLS'), 503, 'no second AUTH needed');
      assert.equal(await code(c, 'USER alice'), 331);
      assert.equal(await code(c, 'PASS alice-cmd-pw'), 230);
    });

    it('a logged-in-only verb before login is 530', async () => {
      const c = await connect(srv.port);
      for (const line of ['CWD /', 'LIST', 'RETR x', 'STOR x', 'EPSV', 'PASV', 'MKD d', 'SIZE x']) {
        assert.equal(await code(c, line), 530, line);
      }
    });
  });

  describe('parameters', () => {
    it('OPTS UTF8 ON is 200, SYST is 215', async () => {
      const c = await connect(srv.port);
      assert.equal(await code(c, 'OPTS UTF8 ON'), 200);
      const syst = await c.send('SYST');
      assert.equal(syst.code, 215);
      assert.match(syst.text, /UNIX/);
    });

    it('TYPE A, I and L 8 are 200; TYPE E is 504', async () => {
      const c = await loggedIn(srv.port);
      for (const t of ['A', 'A N', 'I', 'L 8', 'i', 'a']) assert.equal(await code(c, `TYPE ${t}`), 200, `TYPE ${t}`);
      assert.equal(await code(c, 'TYPE E'), 504);
      assert.equal(await code(c, 'TYPE'), 501);
    });

    it('MODE S and STRU F are accepted, MODE B and STRU R are 504', async () => {
      const c = await loggedIn(srv.port);
      assert.equal(await code(c, 'MODE S'), 200);
      assert.equal(await code(c, 'STRU F'), 200);
      assert.equal(await code(c, 'MODE B'), 504);
      assert.equal(await code(c, 'MODE C'), 504);
      assert.equal(await code(c, 'STRU R'), 504);
    });
  });

  describe('unknown and unimplemented verbs', () => {
    it('an unknown verb is 500, a known unimplemented one 502', async () => {
      const c = await loggedIn(srv.port);
      assert.equal(await code(c, 'XYZZ'), 500);
      assert.equal(await code(c, 'SITE CHMOD 777 x'), 502);
      assert.equal(await code(c, 'ACCT billing'), 502);
      assert.equal(await code(c, 'NOOP'), 200);
    });
  });

  describe('STAT, HELP, QUIT', () => {
    it('STAT without an argument is a multi-line 211 with the session state', async () => {
      const c = await loggedIn(srv.port);
      const r = await c.send('STAT');
      assert.equal(r.code, 211);
      assert.ok(r.lines.length > 2);
      assert.match(r.lines[0]!, /^211-/);
      assert.match(r.lines.at(-1)!, /^211 /);
      assert.match(r.text, /Logged in as alice/);
      assert.match(r.text, /Connected from 127\.0\.0\.1/);
      assert.match(r.text, /data protection: private/);
    });

    it('HELP lists every verb the server answers, HELP <verb> its syntax', async () => {
      const c = await connect(srv.port);
      const r = await c.send('HELP');
      assert.equal(r.code, 214);
      const words = new Set(r.lines.slice(1, -1).flatMap((l) => l.trim().split(/\s+/)));
      const registry = buildRegistry();
      assert.deepEqual(words, new Set(registry.keys()));
      const one = await c.send('HELP stor');
      assert.equal(one.code, 214);
      assert.match(one.text, /STOR <path>/);
      assert.equal(await code(c, 'HELP XYZZ'), 504, 'HELP is implemented; an unknown verb is an unsupported parameter');
    });

    it('QUIT answers 221 and closes', async () => {
      const c = await loggedIn(srv.port);
      assert.equal(await code(c, 'QUIT'), 221);
      assert.equal(await c.read(), null, 'connection closed');
    });
  });

  it('answers commands pipelined in one write, in order', async () => {
    const c = await loggedIn(srv.port);
    c.write('PWD\r\nTYPE I\r\nXYZZ\r\nNOOP\r\nSYST\r\nCWD /nonexistent\r\nMODE B\r\nPWD\r\n');
    const codes: number[] = [];
    for (let i = 0; i < 8; i++) codes.push((await c.read())!.code);
    assert.deepEqual(codes, [257, 200, 500, 200, 215, 550, 504, 257]);
  });

  it('answers more pipelined commands than limits.maxPipelinedCommands, in order, without losing any', async () => {
    const c = await loggedIn(srv.port);
    const n = srv.server.config.limits.maxPipelinedCommands * 4;
    const lines = Array.from({ length: n }, (_, i) => (i % 2 === 0 ? 'NOOP' : 'SYST'));
    c.write(lines.map((l) => `${l}\r\n`).join(''));
    for (let i = 0; i < n; i++) assert.equal((await c.read())?.code, i % 2 === 0 ? 200 : 215, `reply ${i}`);
    assert.equal((await c.send('PWD')).code, 257);
  });
});
