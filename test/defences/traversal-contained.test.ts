import assert from 'node:assert/strict';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlClient, type FtpReply } from '../helpers/control-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { snapshotTree, type TreeSnapshot } from '../helpers/tree-snapshot.js';

// Path traversal at the protocol level, from a logged-in client: encoded, double-dot, backslash, NUL, overlong (UTF-8
// and length) and symlinks that lead out of the home, through every verb that takes a path. The proof is containment:
// every reply is a refusal (5xx), and afterwards nothing outside the home, nor inside it, has changed.

const ALICE = { name: 'alice', password: 'alice-secret' };

interface Case {
  /** What the client sends as the path: text, or raw bytes for sequences that are not UTF-8. */
  path: string | Buffer;
  /** A symlink named directly: verbs acting on the entry itself (DELE, RNFR, RMD, MKD) would act on the link, inside
   *  the home, which is harmless and not traversal; only verbs that follow it are tried. */
  link?: boolean;
}

const CORPUS: Case[] = [
  // Double dot, relative and absolute.
  { path: '../bob/secret.txt' },
  { path: '../../homes/bob/secret.txt' },
  { path: '/../bob/secret.txt' },
  { path: '../../../../../../../../etc/passwd' },
  { path: '/../../../../etc/shadow' },
  { path: './../.././../bob/secret.txt' },
  { path: '....//....//bob/secret.txt' },
  { path: '..;/..;/bob/secret.txt' },
  { path: '~/../bob/secret.txt' },
  { path: '/proc/self/root/etc/passwd' },
  { path: 'file:///etc/passwd' },
  // URL-encoded, double-encoded and overlong-encoded dots and slashes (as text: FTP does not decode them).
  { path: '%2e%2e/%2e%2e/bob/secret.txt' },
  { path: '..%2f..%2fbob/secret.txt' },
  { path: '%2e%2e%2f%2e%2e%2fbob/secret.txt' },
  { path: '%252e%252e/%252e%252e/bob/secret.txt' },
  { path: '%c0%ae%c0%ae/%c0%ae%c0%ae/bob/secret.txt' },
  { path: '..%c0%af..%c0%afbob/secret.txt' },
  { path: '..\u2215..\u2215bob/secret.txt' },
  // Backslashes (a separator to Windows clients).
  { path: '..\\bob\\secret.txt' },
  { path: '..\\..\\homes\\bob\\secret.txt' },
  { path: 'sub\\..\\..\\bob' },
  { path: '\\\\?\\C:\\Windows\\win.ini' },
  // NUL truncation tricks.
  { path: '../bob/secret.txt\0.png' },
  { path: 'inside.txt\0/../../bob/secret.txt' },
  // Overlong UTF-8 for "../" (0xC0 0xAE is an overlong '.', 0xC0 0xAF an overlong '/').
  { path: Buffer.from([0xc0, 0xae, 0xc0, 0xae, 0xc0, 0xaf, 0x62, 0x6f, 0x62]) },
  { path: Buffer.concat([Buffer.from('../'), Buffer.from([0xe0, 0x80, 0xae, 0xe0, 0x80, 0xae]), Buffer.from('/bob/secret.txt')]) },
  // Overlong lengths: one name past storage.maxNameBytes, a path past storage.maxPathBytes, a line past the limit.
  { path: `${'a'.repeat(300)}/../../bob/secret.txt` },
  { path: `${'d/'.repeat(2_100)}x` },
  { path: `${'../'.repeat(1_400)}bob/secret.txt` },
  // Symlinks in the home that lead out of it.
  { path: 'escape/secret.txt' },
  { path: 'escape/new.txt' },
  { path: 'escape/../escape/secret.txt' },
  { path: './escape/./secret.txt' },
  { path: 'escape-file', link: true },
  { path: 'dangling', link: true },
  { path: 'escape-dir-link', link: true },
];

/** Verbs answered on the control connection alone; RNTO is tried after a valid RNFR. */
const CONTROL_VERBS = ['SIZE', 'MDTM', 'MLST', 'CWD', 'DELE', 'RMD', 'MKD', 'RNFR', 'RNTO', 'MFMT', 'STAT'] as const;
/** Verbs that open a data connection (each gets a fresh EPSV and a connected data client). */
const DATA_VERBS = ['RETR', 'STOR', 'APPE', 'LIST', 'NLST', 'MLSD'] as const;
const ENTRY_VERBS = new Set(['DELE', 'RMD', 'MKD', 'RNFR', 'RNTO']);

describe('path traversal is refused and contained', () => {
  let t: TestServer;
  let outsideBefore: TreeSnapshot;
  let homeBefore: TreeSnapshot;

  before(async () => {
    t = await startTestServer({ users: [ALICE, { name: 'bob', password: 'bob-secret' }], config: { defender: { threshold: 100_000 } } });
    const home = t.home('alice');
    const bob = t.home('bob');
    await writeFile(join(bob, 'secret.txt'), 'bob only\n');
    await mkdir(join(bob, 'dir'));
    await writeFile(join(home, 'inside.txt'), 'alice\n');
    await symlink(bob, join(home, 'escape'));
    await symlink(join(bob, 'secret.txt'), join(home, 'escape-file'));
    await symlink(join(bob, 'not-yet-there.txt'), join(home, 'dangling'));
    await symlink(join(bob, 'dir'), join(home, 'escape-dir-link'));
    outsideBefore = await snapshotTree(t.dir, [home, t.storeDir]);
    homeBefore = await snapshotTree(home, '');
  });
  after(() => t.close());

  it('every verb with every corpus path is refused with 5xx', async () => {
    const c = await ControlClient.connect(t.port);
    const accepted: string[] = [];
    let tried = 0;
    try {
      assert.equal((await c.read())?.code, 220);
      assert.equal((await c.login(ALICE.name, ALICE.password)).code, 230);
      const send = async (verb: string, path: string | Buffer): Promise<FtpReply> => {
        c.write(Buffer.concat([Buffer.from(`${verb} `), Buffer.isBuffer(path) ? path : Buffer.from(path), Buffer.from('\r\n')]));
        const r = await c.read();
        if (r === null) throw new Error(`connection closed after ${verb}`);
        return r;
      };
      const show = (p: string | Buffer) => (Buffer.isBuffer(p) ? `0x${p.toString('hex')}` : JSON.stringify(p.length > 80 ? `${p.slice(0, 80)}…` : p));

      for (const { path, link } of CORPUS) {
        for (const verb of CONTROL_VERBS) {
          if (link === true && ENTRY_VERBS.has(verb)) continue;
          tried++;
          let r: FtpReply;
          if (verb === 'RNTO') {
            assert.equal((await c.send('RNFR inside.txt')).code, 350);
            r = await send('RNTO', path);
          } else if (verb === 'MFMT') {
            r = await send('MFMT', Buffer.concat([Buffer.from('20200101000000 '), Buffer.isBuffer(path) ? path : Buffer.from(path)]));
          } else {
            r = await send(verb, path);
          }
          if (r.code < 500) accepted.push(`${verb} ${show(path)} -> ${r.text}`);
          if (verb === 'CWD' && r.code < 500) await c.send('CWD /');
        }
        for (const verb of DATA_VERBS) {
          tried++;
          const port = await c.epsv();
          const data = c.dataConnect(port);
          const r = await send(verb, path);
          if (r.code < 500) {
            accepted.push(`${verb} ${show(path)} -> ${r.text}`);
            if (r.code === 150) {
              if (verb === 'STOR' || verb === 'APPE') void data.upload(Buffer.from('pwned\n'));
              await c.read();
            }
          }
          data.socket.destroy();
        }
      }
      assert.equal((await c.send('NOOP')).code, 200, 'the session survived the corpus');
    } finally {
      c.close();
    }
    assert.ok(tried > 400, `tried ${tried}`);
    assert.deepEqual(accepted, [], 'every reply was 5xx');
  });

  it('nothing outside the home changed, and nothing inside it either', async () => {
    const home = t.home('alice');
    assert.deepEqual(await snapshotTree(t.dir, [home, t.storeDir]), outsideBefore);
    assert.deepEqual(await snapshotTree(home, ''), homeBefore);
    assert.equal(await readFile(join(t.home('bob'), 'secret.txt'), 'utf8'), 'bob only\n');
  });
});
