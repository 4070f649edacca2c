import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Client } from 'basic-ftp';
import { CURL_UPLOAD_TLS_ARGS, PY_REUSE_FTP_TLS, runCurl, runProcess } from '../helpers/clients.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { snapshotTree, type TreeSnapshot } from '../helpers/tree-snapshot.js';

// Home confinement against a tree that changes under the server. A local process (another account, a sync tool)
// swaps the home's directory `swap` between the real directory and a symlink to a directory outside the home, in a
// tight loop, while three real clients (Python's ftplib, basic-ftp, curl) run every verb that touches a path through
// it: RETR, SIZE, LIST, NLST, MLSD, STOR, DELE, RNFR/RNTO, MKD, RMD, MFMT. The outside directory holds files with
// a marker in their content and in one name. Afterwards: no download, size or listing showed anything from outside,
// the outside tree is byte for byte and timestamp for timestamp what it was (nothing created, renamed, deleted,
// touched; no temporary file left), and the races the server caught are in the audit trail as security events that
// name the virtual path only.

const ALICE = { name: 'alice', password: 'alice-secret' };
const MARKER = 'OUTSIDE-MARKER-5c1e';
/** Outside data.txt: a size no inside file has, so a SIZE reply that read it is recognisable. */
const OUTSIDE_DATA = `${MARKER}\n`.repeat(200);
const INSIDE_DATA = 'inside data\n';
/** Rounds of every verb per client (Python ftplib and basic-ftp; curl starts a process per verb, so fewer). */
const ROUNDS = 20;
const CURL_ROUNDS = 4;
/** Names the clients act on (one set per round), pre-created on both sides so an operation that reaches out finds its target. */
const SLOTS = ROUNDS;
/** Upper bound on the clients' run, for a loaded machine; they normally finish their rounds well before. */
const CLIENT_SECONDS = 40;

/** The swapper: a separate process, as the attacker would be. Leaves the real directory in place when it ends. */
const SWAPPER = String.raw`
import os, random, sys, time
home, outside, seconds, stop = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
swap, real, link = home + '/swap', home + '/swap.real', home + '/swap.link'
os.symlink(outside, link)
end = time.time() + seconds
n = 0
while time.time() < end and not os.path.exists(stop):
    os.rename(swap, real); os.rename(link, swap)
    time.sleep(random.random() * 0.004)
    os.rename(swap, link); os.rename(real, swap)
    time.sleep(random.random() * 0.004)
    n += 1
os.unlink(link)
print(n)
`;

/** ftplib: every verb once per round, each outcome as one JSON line. Reconnects after a broken connection. */
const PY_CLIENT = PY_REUSE_FTP_TLS + String.raw`
import io, json, sys, time
port, user, password, seconds, rounds = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
def rec(op, ok, data=''):
    print(json.dumps({'op': op, 'ok': ok, 'data': data}), flush=True)
def lines(cmd):
    out = []
    ftp.retrlines(cmd, out.append)
    return '\n'.join(out)
ftp = ftps_login(port, user, password)
end = time.time() + seconds
i = 0
while time.time() < end and i < rounds:
    steps = [
        ('RETR', lambda: (lambda b: (ftp.retrbinary('RETR swap/data.txt', b.write), b.getvalue().decode('latin-1'))[1])(io.BytesIO())),
        ('SIZE', lambda: str(ftp.size('swap/data.txt'))),
        ('NLST', lambda: '\n'.join(ftp.nlst('swap'))),
        ('LIST', lambda: lines('LIST swap')),
        ('MLSD', lambda: lines('MLSD swap')),
        ('STOR', lambda: ftp.storbinary('STOR swap/py-up-%d.txt' % i, io.BytesIO(b'uploaded\n'))),
        ('DELE', lambda: ftp.delete('swap/del-%d.txt' % i)),
        ('RENAME', lambda: ftp.rename('swap/ren-%d.txt' % i, 'swap/renamed-%d.txt' % i)),
        ('MKD', lambda: ftp.mkd('swap/mk-%d' % i)),
        ('RMD', lambda: ftp.rmd('swap/rmd-%d' % i)),
        ('MFMT', lambda: ftp.sendcmd('MFMT 20000101000000 swap/data.txt')),
    ]
    for op, step in steps:
        try:
            out = step()
            rec(op, True, out if isinstance(out, str) else '')
        except ftplib.error_perm as e:
            rec(op, False, str(e))
        except Exception as e:
            rec(op, False, 'broken: ' + repr(e))
            try: ftp.close()
            except Exception: pass
            ftp = ftps_login(port, user, password)
    i += 1
try: ftp.quit()
except Exception: pass
`;

interface Outcome {
  client: string;
  op: string;
  ok: boolean;
  data: string;
}

class Collect extends Writable {
  readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.chunks.push(chunk);
    cb();
  }
}

async function basicFtpLoop(t: TestServer, untilMs: number, outcomes: Outcome[]): Promise<void> {
  const connect = async (): Promise<Client> => {
    const c = new Client(10_000);
    await c.access({ host: '127.0.0.1', port: t.port, user: ALICE.name, password: ALICE.password, secure: true, secureOptions: { rejectUnauthorized: false } });
    return c;
  };
  let client = await connect();
  const record = (op: string, ok: boolean, data = '') => outcomes.push({ client: 'basic-ftp', op, ok, data });
  try {
    for (let i = 0; Date.now() < untilMs && i < ROUNDS; i++) {
      const steps: Array<[string, () => Promise<string>]> = [
        ['RETR', async () => {
          const sink = new Collect();
          await client.downloadTo(sink, 'swap/data.txt');
          return Buffer.concat(sink.chunks).toString('latin1');
        }],
        ['LIST', async () => (await client.list('swap')).map((e) => e.name).join('\n')],
        ['STOR', async () => (await client.uploadFrom(Readable.from([Buffer.from('uploaded\n')]), `swap/bf-up-${i}.txt`), '')],
        ['DELE', async () => (await client.remove(`swap/bf-del-${i}.txt`), '')],
        ['RENAME', async () => (await client.rename(`swap/bf-ren-${i}.txt`, `swap/bf-renamed-${i}.txt`), '')],
        ['MKD', async () => (await client.send(`MKD swap/bf-mk-${i}`), '')],
        ['SIZE', async () => String(await client.size('swap/data.txt'))],
      ];
      for (const [op, step] of steps) {
        try {
          record(op, true, await step());
        } catch (err) {
          record(op, false, String((err as Error).message));
          if (client.closed) client = await connect();
        }
      }
    }
  } finally {
    client.close();
  }
}

async function curlLoop(t: TestServer, untilMs: number, outcomes: Outcome[], upload: string): Promise<void> {
  const base = `ftp://127.0.0.1:${t.port}`;
  const common = ['--ssl-reqd', '-k', '--ftp-pasv', '--ftp-method', 'nocwd', '-u', `${ALICE.name}:${ALICE.password}`];
  for (let i = 0; Date.now() < untilMs && i < CURL_ROUNDS; i++) {
    const runs: Array<[string, string[]]> = [
      ['RETR', [...common, `${base}/swap/data.txt`]],
      ['LIST', [...common, `${base}/swap/`]],
      ['NLST', [...common, '--list-only', `${base}/swap/`]],
      ['STOR', [...common, ...CURL_UPLOAD_TLS_ARGS, '-T', upload, `${base}/swap/curl-up-${i}.txt`]],
    ];
    for (const [op, args] of runs) {
      const r = await runCurl(args, { timeoutMs: 15_000 });
      outcomes.push({ client: 'curl', op, ok: r.code === 0, data: r.code === 0 ? r.stdout : r.stderr });
    }
  }
}

function diff(before: TreeSnapshot, after: TreeSnapshot): string[] {
  const out: string[] = [];
  for (const [k, v] of after) if (before.get(k) !== v) out.push(before.has(k) ? `changed ${k}` : `created ${k}`);
  for (const k of before.keys()) if (!after.has(k)) out.push(`removed ${k}`);
  return out;
}

describe('confinement holds while a directory is swapped for a symlink leading out of the home', () => {
  let t: TestServer;
  let home: string;
  let outside: string;
  let outsideBefore: TreeSnapshot;
  const outcomes: Outcome[] = [];
  let swaps = 0;

  before(async () => {
    t = await startTestServer({ users: [ALICE], config: { defender: { threshold: 1_000_000 } } });
    home = t.home(ALICE.name);
    outside = join(t.dir, 'outside');
    const swap = join(home, 'swap');
    await mkdir(outside);
    await mkdir(swap);
    await writeFile(join(outside, 'data.txt'), OUTSIDE_DATA);
    await writeFile(join(outside, `${MARKER}-listed.txt`), MARKER);
    await writeFile(join(swap, 'data.txt'), INSIDE_DATA);
    for (const dir of [outside, swap]) {
      for (let i = 0; i < SLOTS; i++) {
        await writeFile(join(dir, `del-${i}.txt`), dir === outside ? MARKER : 'x');
        await writeFile(join(dir, `ren-${i}.txt`), dir === outside ? MARKER : 'x');
        await writeFile(join(dir, `bf-del-${i}.txt`), dir === outside ? MARKER : 'x');
        await writeFile(join(dir, `bf-ren-${i}.txt`), dir === outside ? MARKER : 'x');
        await mkdir(join(dir, `rmd-${i}`));
      }
    }
    outsideBefore = await snapshotTree(outside, '');

    const upload = join(t.dir, 'curl-upload.txt');
    await writeFile(upload, 'uploaded\n');
    const stop = join(t.dir, 'stop-swapping');
    const untilMs = Date.now() + CLIENT_SECONDS * 1000;
    const swapper = runProcess('python3', ['-c', SWAPPER, home, outside, String(CLIENT_SECONDS + 5), stop], { timeoutMs: (CLIENT_SECONDS + 20) * 1000 });
    const pyArgs = [String(t.port), ALICE.name, ALICE.password, String(CLIENT_SECONDS), String(ROUNDS)];
    const pyRun = runProcess('python3', ['-c', PY_CLIENT, ...pyArgs], { timeoutMs: (CLIENT_SECONDS + 30) * 1000 });
    await Promise.all([
      pyRun.then((r) => {
        for (const line of r.stdout.split('\n').filter((l) => l !== '')) outcomes.push({ client: 'ftplib', ...(JSON.parse(line) as Omit<Outcome, 'client'>) });
        if (r.code !== 0) outcomes.push({ client: 'ftplib', op: 'exit', ok: false, data: r.stderr });
      }),
      basicFtpLoop(t, untilMs, outcomes),
      curlLoop(t, untilMs, outcomes, upload),
    ]);
    await writeFile(stop, '');
    const s = await swapper;
    swaps = Number(s.stdout.trim());
    await rm(stop);
  });
  after(() => t.close());

  const summary = () => {
    const count = (f: (o: Outcome) => boolean) => outcomes.filter(f).length;
    return {
      swaps,
      operations: outcomes.length,
      succeeded: count((o) => o.ok),
      downloadsFromOutside: count((o) => o.op === 'RETR' && o.ok && o.data.includes(MARKER)),
      sizesFromOutside: count((o) => o.op === 'SIZE' && o.ok && o.data.trim() === String(OUTSIDE_DATA.length)),
      listingsOfOutside: count((o) => ['LIST', 'NLST', 'MLSD'].includes(o.op) && o.ok && o.data.includes(MARKER)),
    };
  };

  it('the clients ran every verb many times through the swapping directory', () => {
    const s = summary();
    // Shown with the figures below, so a run documents what it exercised.
    console.log(`confinement race: ${JSON.stringify(s)}`);
    assert.ok(s.swaps >= 300, `swaps: ${s.swaps}`);
    for (const op of ['RETR', 'SIZE', 'NLST', 'LIST', 'MLSD', 'STOR', 'DELE', 'RENAME', 'MKD', 'RMD', 'MFMT']) {
      assert.ok(outcomes.filter((o) => o.op === op).length >= ROUNDS, `${op} ran too rarely`);
    }
    // Both states were met: attempts went through (the real directory) and others were refused (the symlink).
    assert.ok(s.succeeded >= s.operations / 10, `only ${s.succeeded} of ${s.operations} succeeded`);
    assert.ok(s.operations - s.succeeded >= s.operations / 10, `only ${s.operations - s.succeeded} of ${s.operations} refused`);
    assert.ok(!outcomes.some((o) => o.data.startsWith('broken:')), 'no client connection broke');
  });

  it('not one byte from outside reached a client: downloads, sizes and listings', () => {
    const s = summary();
    assert.equal(s.downloadsFromOutside, 0, 'downloads that returned the outside file');
    assert.equal(s.sizesFromOutside, 0, 'SIZE replies that measured the outside file');
    assert.equal(s.listingsOfOutside, 0, 'listings that showed the outside directory');
    for (const o of outcomes.filter((x) => x.op === 'RETR' && x.ok)) assert.equal(o.data, INSIDE_DATA);
  });

  it('nothing outside the home was created, renamed, deleted or touched, and no temporary file was left there', async () => {
    const changes = diff(outsideBefore, await snapshotTree(outside, ''));
    const temps = changes.filter((c) => c.includes('.ftpsd-'));
    console.log(`confinement race: outside changes ${changes.length} (temporaries ${temps.length}): ${changes.slice(0, 12).join(', ')}`);
    assert.deepEqual(changes, []);
    assert.equal(await readFile(join(outside, 'data.txt'), 'utf8'), OUTSIDE_DATA);
  });

  it('caught races are security audit events with the virtual path; replies never name a real path', () => {
    const events = t.logs().filter((l) => l.audit === true && l.event === 'confinement_violation');
    console.log(`confinement race: ${events.length} confinement_violation audit events`);
    assert.ok(events.length > 0, 'no confinement_violation audit event');
    for (const e of events) {
      assert.equal(e.user, ALICE.name);
      assert.match(String(e.path), /^\/swap(\/|$)/);
      assert.ok(!JSON.stringify(e).includes(t.dir), `audit event names a real path: ${JSON.stringify(e)}`);
    }
    for (const o of outcomes.filter((x) => !x.ok)) assert.ok(!o.data.includes(t.dir), `reply names a real path: ${o.data}`);
  });
});
