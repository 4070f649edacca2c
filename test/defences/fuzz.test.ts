import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { ALL_COMMANDS } from '../../src/commands/registry.js';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, writeHomeFile, type TestServer } from '../helpers/server.js';
import { snapshotTree, type TreeSnapshot } from '../helpers/tree-snapshot.js';

// Seeded fuzzing of the control channel against a live server: random and mutated command lines over several
// logged-in TLS sessions. The server must never crash, must keep answering a separate healthy session, must stay
// within a memory bound, and must not create anything outside the user's home. Bounded in lines and in time; the
// seed is printed so a failure can be replayed with FUZZ_SEED
// (FUZZ_LINES and FUZZ_MS change the bounds for a longer run).

const ALICE = { name: 'alice', password: 'alice-secret' };
const SEED = Number(process.env.FUZZ_SEED ?? 20_240_917);
const MAX_LINES = Number(process.env.FUZZ_LINES ?? 3_000);
/** The time bound grows with the line count (about 1 ms a line is typical; 8 leaves room for a loaded machine). */
const MAX_MS = Number(process.env.FUZZ_MS ?? Math.max(20_000, MAX_LINES * 8));
const SESSIONS = 4;
const BATCH = 10;
/** A fuzz session is re-created after this many lines (REIN, USER or a QUIT may have left it logged out). */
const LINES_PER_SESSION = 150;
/** Many fuzz lines end their session (QUIT, REIN, overlong lines); the cap only stops a runaway loop. */
const MAX_RECONNECTS = Math.max(200, Math.ceil(MAX_LINES / 10));
const RSS_BOUND_BYTES = 100 * 1024 * 1024;
/** Sampled during the run, before garbage is collected: four fuzz sessions' garbage and TLS buffers on top. */
const PEAK_RSS_BOUND_BYTES = 200 * 1024 * 1024;
/** A healthy session's NOOP must be answered within this, even while the fuzzers run. */
const HEALTHY_REPLY_MS = 2_000;
const SYNC_TIMEOUT_MS = 8_000;

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  readonly #r: () => number;
  constructor(seed: number) {
    this.#r = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.#r() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.#r() < p;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  ascii(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(32 + this.int(95));
    return s;
  }
}

const VERBS = [...new Set(ALL_COMMANDS.flatMap((c) => [c.verb, ...(c.aliases ?? [])]))];
const NOT_OURS = ['SITE', 'ACCT', 'SMNT', 'LPRT', 'LPSV', 'XCRC', 'XMD5', 'ADAT', 'MIC', 'GET', 'POST', 'HTTP', 'X', 'ABCDE', ''];
const HUGE = ['99999999999999999999999999', '-1', '1e308', 'NaN', 'Infinity', '0x7fffffffffffffff', '18446744073709551616', '9007199254740993', '-0', '1.5', ' 12', '00000000000000000000000000001'];
const PATHS = ['../../../../etc/passwd', '/', '.', '..', '*', '?', '%s%s%s%n', '"quoted"', '\'', '-la', '-R /', '~', 'a/../../b', 'dir/', 'ü/ñ/文件', '\u202e', 'x'.repeat(255), 'CON', 'nul'];
const EPSV_ARGS = ['', '1', '2', 'ALL', 'all', '3', '0', '-1', '|||', '(|||1|)', '99999999999', '1 2', ' ALL', 'ALL ALL'];
const PORT_ARGS = ['127,0,0,1,4,1', '999,999,999,999,999,999', '127,0,0,1,99999999999,1', '1,2,3', ',,,,,', '-1,0,0,1,0,21', '127,0,0,1,0,21', '0,0,0,0,0,0', '255,255,255,255,255,255'];
const EPRT_ARGS = ['|1|127.0.0.1|5000|', '|2|::1|5000|', '|1|127.0.0.1|99999999999999|', '||||', '|3|x|1|', '\x01', '|1|127.0.0.1|21|', '|1|10.0.0.1|6000|'];
const DANGEROUS = new Set(['QUIT']);

/** One fuzz line (without its line end, which the caller may or may not add). */
function fuzzLine(g: Gen): Buffer {
  const verb = () => {
    let v = g.chance(0.85) ? g.pick(VERBS) : g.pick(NOT_OURS);
    if (DANGEROUS.has(v) && g.chance(0.9)) v = 'NOOP';
    return g.chance(0.2) ? v.toLowerCase() : v;
  };
  switch (g.int(12)) {
    case 0: // valid verb, junk argument
      return Buffer.from(`${verb()} ${g.ascii(g.int(40))}`);
    case 1: // long argument, sometimes past limits.maxLineBytes
      return Buffer.from(`${verb()} ${g.ascii(g.pick([300, 1_000, 4_000, 4_090, 5_000, 20_000]))}`);
    case 2: // binary argument
      return Buffer.concat([Buffer.from(`${verb()} `), g.bytes(1 + g.int(64))]);
    case 3: // Telnet IAC sequences (RFC 854), including unterminated subnegotiation and a trailing IAC
      return Buffer.concat([g.pick([Buffer.from([0xff, 0xf4, 0xff, 0xf2]), Buffer.from([0xff, 0xfa, 0x18]), Buffer.from([0xff, 0xff]), Buffer.from([0xff, 0xfb])]), Buffer.from(verb()), g.chance(0.5) ? Buffer.from([0xff]) : Buffer.alloc(0)]);
    case 4: // NUL and bare CR inside the line
      return Buffer.from(`${verb()} ${g.ascii(4)}${g.pick(['\0', '\r', '\0\0', '\r\r\r', '\r\0'])}${g.ascii(4)}`);
    case 5: // huge and odd numbers where numbers belong
      return Buffer.from(`${g.pick(['REST', 'ALLO', 'MFMT', 'SIZE', 'MODE', 'TYPE', 'PBSZ', 'OPTS'])} ${g.pick(HUGE)}`);
    case 6:
      return Buffer.from(`PORT ${g.pick(PORT_ARGS)}`);
    case 7:
      return Buffer.from(g.chance(0.5) ? `EPSV ${g.pick(EPSV_ARGS)}` : `EPRT ${g.pick(EPRT_ARGS)}`);
    case 8: // path-taking verbs with tricky paths
      return Buffer.from(`${g.pick(['CWD', 'SIZE', 'MDTM', 'MLST', 'STAT', 'RNFR', 'DELE', 'RMD', 'MKD', 'LIST', 'NLST', 'RETR', 'HELP', 'OPTS', 'HOST'])} ${g.pick(PATHS)}`);
    case 9: // random bytes, no structure at all
      return g.bytes(1 + g.int(200));
    case 10: // a valid line mutated: bit flips, insertions, deletions, truncation
      return mutate(g, Buffer.from(`${g.pick(VERBS)} ${g.pick(PATHS)}`));
    default: // a known verb with no argument (or several verbs on one line)
      return Buffer.from(g.chance(0.7) ? verb() : `${verb()} ${verb()} ${verb()}`);
  }
}

function mutate(g: Gen, line: Buffer): Buffer {
  let b = Buffer.from(line);
  for (let n = 1 + g.int(4); n > 0; n--) {
    const at = g.int(b.length + 1);
    switch (g.int(4)) {
      case 0:
        if (b.length > 0) b[at % b.length] = b[at % b.length]! ^ (1 << g.int(8));
        break;
      case 1:
        b = Buffer.concat([b.subarray(0, at), g.bytes(1 + g.int(4)), b.subarray(at)]);
        break;
      case 2:
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + g.int(3))]);
        break;
      default:
        b = b.subarray(0, at);
    }
  }
  return b;
}

/** Line ends as clients send them, and as broken clients do. */
function lineEnd(g: Gen): string {
  return g.pick(['\r\n', '\r\n', '\r\n', '\r\n', '\n', '\r', '', '\n\r', '\r\r\n']);
}

/** A verb nobody implements, unique per sync, whose 500 reply marks the end of a batch. */
function syncVerb(n: number): string {
  const a = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  return `Q${a[Math.floor(n / 676) % 26]}${a[Math.floor(n / 26) % 26]}${a[n % 26]}`;
}

describe('control channel fuzzing', () => {
  let t: TestServer;
  let outsideBefore: TreeSnapshot;

  before(async () => {
    t = await startTestServer({
      users: [ALICE],
      config: {
        // The fuzzer breaks every rule; it must not ban itself (or the healthy session on the same address).
        defender: { threshold: 1_000_000 },
        limits: { maxFailedLoginsPerSession: 1_000, failedLoginDelayMs: 0, maxSessionsPerIp: 50 },
        pasv: { acceptTimeoutMs: 300 },
        tls: { handshakeTimeoutMs: 1_000 },
        log: { level: 'warn' },
      },
    });
    await writeHomeFile(t, 'alice', 'file.txt', 'some content\n');
    outsideBefore = await snapshotTree(t.dir, [t.home('alice'), t.storeDir]);
  });
  after(() => t.close());

  it(`survives ${MAX_LINES} random and mutated lines (seed ${SEED}) and keeps serving`, async () => {
    // Warm-up: argon2id verifications (19 MiB each) run on libuv's pool threads, whose malloc arenas keep that memory
    // once touched. Touch them all before the baseline so the bound measures growth, not the allocator's high mark.
    const rssCold = process.memoryUsage().rss;
    for (let round = 0; round < 3; round++) {
      const warm = await Promise.all(Array.from({ length: 8 }, () => ControlClient.loggedIn(t.port, ALICE.name, ALICE.password)));
      for (const c of warm) c.close();
    }
    await sleep(200);
    const rssStart = process.memoryUsage().rss;
    console.log(`# rss cold ${rssCold}, after warm-up ${rssStart}`);
    const healthy = await ControlClient.loggedIn(t.port, ALICE.name, ALICE.password);
    let stop = false;
    const latencies: number[] = [];
    const healthyProblems: string[] = [];
    let rssPeak = rssStart;
    const startedAt = Date.now();
    const healthyLoop = (async () => {
      while (!stop) {
        rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
        const started = Date.now();
        const r = await healthy.send('NOOP').catch((e: Error) => ({ code: 0, text: e.message }));
        latencies.push(Date.now() - started);
        if (r.code !== 200) healthyProblems.push(`NOOP -> ${r.code} ${r.text}`);
        await sleep(50);
      }
    })();

    let sent = 0;
    let reconnects = 0;
    let syncs = 0;
    const stuck: string[] = [];
    const deadline = Date.now() + MAX_MS;
    const worker = async (w: number) => {
      // One generator and one share of the lines per session: each session's byte stream depends on the seed only.
      const g = new Gen(SEED + w);
      const quota = Math.ceil(MAX_LINES / SESSIONS);
      let mine = 0;
      let c: ControlClient | null = null;
      let sinceLogin = 0;
      while (mine < quota && Date.now() < deadline) {
        if (c === null || c.closed || sinceLogin >= LINES_PER_SESSION) {
          c?.close();
          if (reconnects++ >= MAX_RECONNECTS) throw new Error('too many reconnects');
          c = await ControlClient.loggedIn(t.port, ALICE.name, ALICE.password);
          sinceLogin = 0;
        }
        const chunks: Buffer[] = [];
        for (let i = 0; i < BATCH && mine < quota; i++, mine++, sent++, sinceLogin++) chunks.push(fuzzLine(g), Buffer.from(lineEnd(g)));
        const marker = syncVerb(syncs++ % 17_576);
        // The leading CRLF ends whatever unfinished line the batch left behind.
        chunks.push(Buffer.from(`\r\n${marker}\r\n`));
        c.write(Buffer.concat(chunks));
        const until = Date.now() + SYNC_TIMEOUT_MS;
        for (;;) {
          const r = await c.read(Math.max(1, until - Date.now())).catch(() => undefined);
          if (r === null) break; // the server closed this session (QUIT, too long, ...): a new one next round
          if (r === undefined) {
            stuck.push(`worker ${w}: no reply to ${marker} within ${SYNC_TIMEOUT_MS} ms`);
            c.close();
            break;
          }
          if (r.code === 500 && r.text.startsWith(`500 ${marker} `)) break;
        }
      }
      c?.close();
    };
    await Promise.all(Array.from({ length: SESSIONS }, (_, w) => worker(w)));
    stop = true;
    await healthyLoop;
    healthy.close();

    console.log(`# fuzz seed ${SEED}: ${sent} lines in ${Date.now() - startedAt} ms, ${syncs} batches, ${reconnects} sessions (cap ${MAX_RECONNECTS}); healthy NOOP max ${Math.max(...latencies)} ms over ${latencies.length}; rss peak ${Math.round((rssPeak - rssStart) / 1048576)} MiB above the start`);
    const internal = t.logs().filter((l) => (l.level as number) >= 50);
    assert.ok(sent >= Math.min(500, MAX_LINES), `only ${sent} lines were sent in ${MAX_MS} ms`);
    assert.ok(rssPeak < rssStart + PEAK_RSS_BOUND_BYTES, `RSS peaked at ${rssPeak}, from ${rssStart}`);
    assert.deepEqual(internal.map((l) => `${String(l.msg)} ${JSON.stringify(l.err ?? '')}`), [], 'no command ended in an internal error');
    assert.deepEqual(stuck, [], 'every fuzz session answered its batch or was closed');
    assert.deepEqual(healthyProblems, [], 'the healthy session was answered 200 every time');
    assert.ok(latencies.length > 10);
    assert.ok(Math.max(...latencies) < HEALTHY_REPLY_MS, `healthy NOOP took up to ${Math.max(...latencies)} ms`);

    // Still serving: a new session logs in and works.
    const after = await ControlClient.loggedIn(t.port, ALICE.name, ALICE.password);
    assert.equal((await after.send('SIZE file.txt')).code, 213);
    after.close();

    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const rssEnd = process.memoryUsage().rss;
    console.log(`# rss ${rssStart} -> ${rssEnd} (${Math.round((rssEnd - rssStart) / 1048576)} MiB more)`);
    assert.ok(rssEnd < rssStart + RSS_BOUND_BYTES, `RSS grew from ${rssStart} to ${rssEnd}`);

    assert.deepEqual(await snapshotTree(t.dir, [t.home('alice'), t.storeDir]), outsideBefore, 'nothing outside the home was created or changed');
  });
});
