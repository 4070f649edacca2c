import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readdir, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, writeHomeFile, type TestServer } from '../helpers/server.js';

// File and directory commands as a client sees them, with names holding spaces and UTF-8 (RFC 2640): RFC 959
// CWD/CDUP/PWD/MKD/RMD/DELE/RNFR/RNTO/STOU/TYPE, RFC 3659 SIZE/MDTM/MLST/MLSD, MFMT and HASH.

const USER = 'alice';
const PASSWORD = 'alice-secret';
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

interface DataResult {
  first: number;
  final: number;
  text: string;
  firstText: string;
  received: Buffer;
}

async function dataCommand(c: ControlClient, line: string, upload?: Buffer): Promise<DataResult> {
  const port = await c.epsv();
  const data = c.dataConnect(port);
  const first = await c.send(line);
  if (first.code !== 150) {
    data.socket.destroy();
    return { first: first.code, final: 0, text: first.text, firstText: first.text, received: Buffer.alloc(0) };
  }
  if (upload !== undefined) await data.upload(upload);
  const final = await c.read();
  return { first: first.code, final: final?.code ?? 0, text: final?.text ?? '', firstText: first.text, received: await data.received };
}

function lines(b: Buffer): string[] {
  return b.toString('utf8').split('\r\n').filter((l) => l !== '');
}

/** RFC 3659 §7: "fact=value;fact=value; name" → facts and name. */
function parseFacts(line: string): { facts: Record<string, string>; name: string } {
  const sp = line.indexOf('; ');
  const facts: Record<string, string> = {};
  for (const f of line.slice(0, sp).split(';')) {
    const [k, v] = f.split('=');
    if (k !== undefined && v !== undefined) facts[k.toLowerCase()] = v;
  }
  return { facts, name: line.slice(sp + 2) };
}

describe('file and directory commands', () => {
  let t: TestServer;
  let c: ControlClient;
  let home: string;
  before(async () => {
    t = await startTestServer();
    home = t.home(USER);
    c = await ControlClient.connect(t.port);
    await c.read();
    assert.equal((await c.login(USER, PASSWORD)).code, 230);
  });
  after(async () => {
    c.close();
    await t.close();
  });

  test('MKD, CWD, PWD, CDUP and RMD with spaces and UTF-8 names', async () => {
    const mk = await c.send('MKD my dir');
    assert.equal(mk.code, 257);
    assert.equal(mk.text, '257 "/my dir" created');
    assert.equal((await c.send('MKD my dir/日本 ü')).code, 257);
    assert.equal(existsSync(join(home, 'my dir', '日本 ü')), true);
    assert.equal((await c.send('MKD my dir')).code, 550, 'an existing directory');

    assert.equal((await c.send('CWD my dir/日本 ü')).code, 250);
    assert.equal((await c.send('PWD')).text, '257 "/my dir/日本 ü" is the current directory');
    assert.equal((await c.send('CDUP')).code, 250);
    assert.equal((await c.send('PWD')).text, '257 "/my dir" is the current directory');
    assert.equal((await c.send('CWD no such dir')).code, 550);
    assert.equal((await c.send('PWD')).text, '257 "/my dir" is the current directory', 'a failed CWD stays put');
    assert.equal((await c.send('CDUP')).code, 250);
    assert.equal((await c.send('CDUP')).code, 250, 'CDUP at the home stays there');
    assert.equal((await c.send('PWD')).text, '257 "/" is the current directory');

    assert.equal((await c.send('RMD my dir')).code, 550, 'not empty');
    assert.equal((await c.send('RMD my dir/日本 ü')).code, 250);
    assert.equal((await c.send('RMD my dir')).code, 250);
    assert.equal(existsSync(join(home, 'my dir')), false);
  });

  test('a quote in a directory name is doubled in the 257 reply (RFC 959 §7)', async () => {
    assert.equal((await c.send('MKD say "hi"')).text, '257 "/say ""hi""" created');
    assert.equal((await c.send('RMD say "hi"')).code, 250);
  });

  test('DELE, RNFR/RNTO with UTF-8 names; RNTO without RNFR is 503', async () => {
    await writeHomeFile(t, USER, 'grüße 日本.txt', 'hello\n');
    assert.equal((await c.send('RNTO anything')).code, 503);
    assert.equal((await c.send('RNFR grüße 日本.txt')).code, 350);
    assert.equal((await c.send('RNTO renamed ü.txt')).code, 250);
    assert.equal(await readFile(join(home, 'renamed ü.txt'), 'utf8'), 'hello\n');
    assert.equal(existsSync(join(home, 'grüße 日本.txt')), false);
    assert.equal((await c.send('RNTO again.txt')).code, 503, 'RNFR is used up by one RNTO');
    assert.equal((await c.send('RNFR missing.txt')).code, 550);
    assert.equal((await c.send('RNTO again.txt')).code, 503);
    assert.equal((await c.send('DELE renamed ü.txt')).code, 250);
    assert.equal(existsSync(join(home, 'renamed ü.txt')), false);
    assert.equal((await c.send('DELE renamed ü.txt')).code, 550);
  });

  test('SIZE, MDTM, and MFMT then MDTM shows the time that was set', async () => {
    await writeHomeFile(t, USER, 'dated file.txt', '0123456789');
    const when = new Date(Date.UTC(2021, 2, 4, 5, 6, 7));
    await utimes(join(home, 'dated file.txt'), when, when);
    assert.equal((await c.send('SIZE dated file.txt')).text, '213 10');
    assert.equal((await c.send('MDTM dated file.txt')).text, '213 20210304050607');
    assert.equal((await c.send('SIZE /')).code, 550);
    assert.equal((await c.send('SIZE nope')).code, 550);

    const mfmt = await c.send('MFMT 19991231235958 dated file.txt');
    assert.equal(mfmt.code, 213);
    assert.match(mfmt.text, /Modify=19991231235958; dated file\.txt/);
    assert.equal((await c.send('MDTM dated file.txt')).text, '213 19991231235958');
    assert.equal((await stat(join(home, 'dated file.txt'))).mtime.toISOString(), '1999-12-31T23:59:58.000Z');
    assert.equal((await c.send('MFMT 20211340000000 dated file.txt')).code, 501, 'month 13');
  });

  test('MFMT to a time the file system cannot store is refused with 501 and the time stays as it was', async () => {
    const when = new Date(Date.UTC(2021, 2, 4, 5, 6, 7));
    await writeHomeFile(t, USER, 'far future.txt', 'x');
    await utimes(join(home, 'far future.txt'), when, when);
    // ext4 stores 1901-2446 and silently clamps the rest; tmpfs, btrfs and XFS (bigtime) store year 3000. Ask the
    // file system the test runs on, then hold the server to the same answer.
    const probe = await writeHomeFile(t, USER, 'probe.txt', '');
    await utimes(probe, when, new Date(Date.UTC(3000, 0, 1)));
    const storable = (await stat(probe)).mtime.getUTCFullYear() === 3000;
    const r = await c.send('MFMT 30000101000000 far future.txt');
    const set = await c.send('MDTM 30000101000000 far future.txt');
    if (storable) {
      assert.equal(r.code, 213);
      assert.equal(set.code, 213);
      assert.equal((await c.send('MDTM far future.txt')).text, '213 30000101000000');
    } else {
      assert.equal(r.code, 501, r.text);
      assert.match(r.text, /not representable/);
      assert.equal(set.code, 501, set.text);
      assert.equal((await c.send('MDTM far future.txt')).text, '213 20210304050607');
      assert.equal((await stat(join(home, 'far future.txt'))).mtime.getTime(), when.getTime());
    }
    // Before 1970 and within every file system's range: stored as sent.
    assert.equal((await c.send('MFMT 19020101000000 far future.txt')).code, 213);
    assert.equal((await c.send('MDTM far future.txt')).text, '213 19020101000000');
  });

  test('HASH answers 213 SHA-256 0-<last byte> <hex> <name>', async () => {
    const body = Buffer.from('hash me, please\n');
    await writeHomeFile(t, USER, 'to hash ü.txt', body);
    const r = await c.send('HASH to hash ü.txt');
    assert.equal(r.text, `213 SHA-256 0-${body.length - 1} ${sha256(body)} to hash ü.txt`);
    assert.equal((await c.send('HASH /')).code, 550);
  });

  test('MLSD lists facts (type, size, modify, perm, unique) and a cdir entry; MLST one path', async () => {
    assert.equal((await c.send('MKD facts')).code, 257);
    await writeHomeFile(t, USER, 'facts/a b.txt', 'abc');
    await writeHomeFile(t, USER, 'facts/日本.bin', Buffer.alloc(1000));
    assert.equal((await c.send('MKD facts/inner')).code, 257);
    const when = new Date(Date.UTC(2022, 0, 2, 3, 4, 5));
    await utimes(join(home, 'facts', 'a b.txt'), when, when);

    const r = await dataCommand(c, 'MLSD facts');
    assert.deepEqual([r.first, r.final], [150, 226]);
    const entries = lines(r.received).map(parseFacts);
    const byName = new Map(entries.map((e) => [e.name, e.facts]));
    assert.deepEqual([...byName.keys()].sort(), ['.', 'a b.txt', 'inner', '日本.bin']);
    assert.equal(byName.get('.')?.type, 'cdir');
    assert.equal(byName.get('inner')?.type, 'dir');
    const file = byName.get('a b.txt');
    assert.equal(file?.type, 'file');
    assert.equal(file?.size, '3');
    assert.equal(file?.modify, '20220102030405');
    assert.equal(file?.perm, 'adfrw');
    assert.equal(byName.get('日本.bin')?.size, '1000');
    assert.match(byName.get('inner')?.perm ?? '', /^(?=.*c)(?=.*e)(?=.*l)(?=.*m)/);
    const uniques = entries.map((e) => e.facts.unique);
    assert.equal(new Set(uniques).size, uniques.length, 'unique facts differ');

    const mlst = await c.send('MLST facts/a b.txt');
    assert.equal(mlst.code, 250);
    assert.equal(mlst.lines.length, 3);
    assert.ok(mlst.lines[1]?.startsWith(' type=file;'), 'the facts line starts with one space (RFC 3659 §7.2)');
    const one = parseFacts(mlst.lines[1]!.slice(1));
    assert.equal(one.name, '/facts/a b.txt');
    assert.equal(one.facts.size, '3');
    assert.equal(one.facts.unique, file?.unique);
    assert.equal((await dataCommand(c, 'MLSD facts/a b.txt')).first, 501, 'MLSD of a file');
    assert.equal((await c.send('MLST missing')).code, 550);
  });

  test('NLST names and LIST lines name every entry, UTF-8 included', async () => {
    const nlst = await dataCommand(c, 'NLST facts');
    assert.deepEqual([nlst.first, nlst.final], [150, 226]);
    assert.deepEqual(lines(nlst.received).sort(), ['a b.txt', 'inner', '日本.bin']);
    const list = await dataCommand(c, 'LIST -la facts');
    const rows = lines(list.received);
    assert.equal(rows.length, 3);
    const row = rows.find((l) => l.endsWith(' 日本.bin'));
    assert.match(row ?? '', /^-rw.+\s1000\s+\w{3} \d{2} /);
    assert.match(rows.find((l) => l.endsWith(' inner')) ?? '', /^d/);
  });

  test('STOU stores under a new unique name and says which', async () => {
    await writeHomeFile(t, USER, 'report.txt', 'existing\n');
    const names: string[] = [];
    for (const body of ['one\n', 'two\n']) {
      const r = await dataCommand(c, 'STOU report.txt', Buffer.from(body));
      assert.deepEqual([r.first, r.final], [150, 226]);
      const m = /^150 FILE: (.+)$/.exec(r.firstText);
      assert.ok(m !== null, r.firstText);
      const name = m[1]!;
      assert.ok(r.text.includes(name), r.text);
      assert.equal(await readFile(join(home, name), 'utf8'), body);
      names.push(name);
    }
    assert.notEqual(names[0], 'report.txt');
    assert.notEqual(names[0], names[1]);
    assert.equal(await readFile(join(home, 'report.txt'), 'utf8'), 'existing\n');
  });

  test('TYPE A: uploads turn CRLF into LF, downloads LF into CRLF; TYPE I leaves bytes alone', async () => {
    assert.equal((await c.send('TYPE A')).code, 200);
    const up = await dataCommand(c, 'STOR text.txt', Buffer.from('one\r\ntwo\r\nthree'));
    assert.equal(up.final, 226);
    assert.equal(await readFile(join(home, 'text.txt'), 'utf8'), 'one\ntwo\nthree');
    await writeHomeFile(t, USER, 'unix.txt', 'a\nb\n\nc\n');
    const down = await dataCommand(c, 'RETR unix.txt');
    assert.equal(down.received.toString(), 'a\r\nb\r\n\r\nc\r\n');

    assert.equal((await c.send('TYPE I')).code, 200);
    const raw = Buffer.from('x\r\ny\nz\r');
    assert.equal((await dataCommand(c, 'STOR binary.bin', raw)).final, 226);
    assert.deepEqual(await readFile(join(home, 'binary.bin')), raw);
    assert.deepEqual((await dataCommand(c, 'RETR unix.txt')).received.toString(), 'a\nb\n\nc\n');
    assert.equal((await c.send('TYPE E')).code, 504);
  });

  test('no upload temporaries are left behind after all of this', async () => {
    const stray = (await readdir(home, { recursive: true })).filter((n) => n.includes('.ftpsd-'));
    assert.deepEqual(stray, []);
  });
});
