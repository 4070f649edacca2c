import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { PY_REUSE_FTP_TLS, runCurl, runProcess, type RunResult } from '../helpers/clients.js';
import { passiveRange } from '../helpers/server.js';
import { startServeProcess, type ServeProcess } from '../ops/serve-process.js';

// Listing memory stays bounded whatever the directory size. The server runs as its own process (`node bin/ftpsd.js
// serve`, built by `npm test`, with the launchers' V8 flag) so its memory is its alone: VmRSS and VmHWM from
// /proc/PID/status, the peak reset (clear_refs 5) just before the listings start. 20 real clients (curl LIST, curl
// NLST, Python ftplib MLSD) list one 100,000-entry directory at once; every listing must be complete.
//
// Bound: the 20 listings may raise the server's peak RSS by at most 256 MiB, and 5 s later RSS must be below that
// peak and at most 192 MiB above the start. A streamed listing holds a sort buffer of at most
// storage.listingSortMaxEntries names (under 1 MiB, dropped once streaming starts), 16 entries in flight and 64 KiB of
// lines on their way to the data connection; the rest of its cost is that of any concurrent TLS download: measured
// with this setup, 20 concurrent downloads of a 7.4 MB file (what one LIST of this directory sends) raised the peak by
// 119 MiB, glibc's per-thread arenas and V8's heap growing with the busy period. The bound is that plus room for a
// loaded machine, and it does not depend on the directory's size. Before listings were streamed, one LIST of this
// directory raised the peak by 164 MiB, 4 at once by 500 MiB, 20 at once by about 1.9 GB.

const USER = 'alice';
const PASSWORD = 'alice-secret';
const ENTRIES = 100_000;
const CONCURRENT = 20;
const PEAK_GROWTH_BOUND_KIB = 256 * 1024;
const SETTLED_GROWTH_BOUND_KIB = 192 * 1024;
const SETTLE_MS = 5_000;

interface Memory {
  rssKiB: number;
  hwmKiB: number;
}

async function memoryOf(pid: number): Promise<Memory> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM') };
}

/** Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS. */
async function resetPeak(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5');
}

/** Python ftplib: MLSD of the directory, printing the number of file entries it received. */
const PY_MLSD = PY_REUSE_FTP_TLS + String.raw`
import sys
ftp = ftps_login(int(sys.argv[1]), sys.argv[2], sys.argv[3], timeout=60)
print(sum(1 for name, facts in ftp.mlsd('big') if facts.get('type') == 'file'))
ftp.quit()
`;

/** Empty files, created synchronously: the fastest way to a large directory (a second or two). */
function makeEntries(dir: string): void {
  mkdirSync(dir);
  for (let i = 0; i < ENTRIES; i++) closeSync(openSync(join(dir, `entry-${String(i).padStart(6, '0')}-of-a-large-directory.csv`), 'w'));
}

describe(`${CONCURRENT} concurrent listings of a ${ENTRIES.toLocaleString('en')}-entry directory`, () => {
  let p: ServeProcess;
  let pid: number;
  let serverStderr = '';
  let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  /** /proc/PID/status, or a failure that says how the server ended. */
  const memory = async (): Promise<Memory> => {
    try {
      return await memoryOf(pid);
    } catch (err) {
      throw new Error(`server gone (${JSON.stringify(exit)}): ${serverStderr.slice(-2000)} ${JSON.stringify(p.logs().slice(-5))}`, { cause: err });
    }
  };

  before(async () => {
    p = await startServeProcess({
      // As every launcher starts it (bin/ftpsd.js's shebang, npm start, the Dockerfile, the systemd unit).
      nodeArgs: ['--max-semi-space-size=4'],
      users: { [USER]: PASSWORD },
      config: {
        pasv: passiveRange(2 * CONCURRENT),
        limits: { maxSessionsPerIp: 2 * CONCURRENT, maxLoginsPerUser: 2 * CONCURRENT },
        log: { level: 'warn' },
      },
    });
    pid = p.child.pid!;
    p.child.stderr!.on('data', (d: Buffer) => (serverStderr += d.toString('utf8')));
    void p.exited.then((e) => (exit = e));
    makeEntries(join(p.home(USER), 'big'));
  });
  after(async () => {
    p.kill();
    await p.exited;
    await rm(p.dir, { recursive: true, force: true });
  });

  it('each listing is complete, the peak stays within the bound and memory settles afterwards', async () => {
    const base = `ftp://127.0.0.1:${p.port}`;
    const curl = ['--ssl-reqd', '-k', '--ftp-pasv', '-u', `${USER}:${PASSWORD}`];
    // Warm-up: one listing of the directory, so the baseline is the server at work (code loaded, TLS contexts, the
    // heap and the allocator grown to what one transfer needs), not at rest.
    const warm = await runCurl([...curl, `${base}/big/`], { timeoutMs: 60_000 });
    assert.equal(warm.code, 0, warm.stderr);
    await sleep(500);
    const start = await memory();
    await resetPeak(pid);

    const kinds = ['LIST', 'NLST', 'MLSD'] as const;
    const started = Date.now();
    const runs = Array.from({ length: CONCURRENT }, async (_, i): Promise<{ kind: string; count: number; r: RunResult }> => {
      const kind = kinds[i % kinds.length]!;
      const timeoutMs = 150_000;
      if (kind === 'MLSD') {
        const r = await runProcess('python3', ['-c', PY_MLSD, String(p.port), USER, PASSWORD], { timeoutMs }).catch((err: unknown) => ({ code: 1, signal: null, stdout: '', stderr: String(err), timedOut: false }));
        return { kind, count: Number(r.stdout.trim()), r };
      }
      const args = kind === 'NLST' ? [...curl, '--list-only', `${base}/big/`] : [...curl, `${base}/big/`];
      const r = await runCurl(args, { timeoutMs });
      return { kind, count: r.stdout.split('\n').filter((l) => l.includes('-of-a-large-directory.csv')).length, r };
    });
    // Sampled as well as the kernel's peak, to show the curve in the figures.
    let sampledPeak = start.rssKiB;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        sampledPeak = Math.max(sampledPeak, (await memory()).rssKiB);
        await sleep(100);
      }
    })();
    const results = await Promise.all(runs);
    sampling = false;
    await sampler;
    const ms = Date.now() - started;
    const peak = await memory();
    await sleep(SETTLE_MS);
    const settled = await memory();

    const mib = (kib: number) => (kib / 1024).toFixed(1);
    console.log(
      `listing memory: ${CONCURRENT} listings in ${ms} ms; RSS start ${mib(start.rssKiB)} MiB, peak ${mib(peak.hwmKiB)} MiB ` +
        `(+${mib(peak.hwmKiB - start.rssKiB)}, sampled +${mib(sampledPeak - start.rssKiB)}), after ${SETTLE_MS / 1000} s ${mib(settled.rssKiB)} MiB (+${mib(settled.rssKiB - start.rssKiB)})`,
    );
    for (const { kind, count, r } of results) {
      assert.equal(r.code, 0, `${kind} failed: ${r.stderr.slice(0, 300)}`);
      assert.equal(count, ENTRIES, `${kind} listed ${count} entries`);
    }
    assert.ok(peak.hwmKiB - start.rssKiB <= PEAK_GROWTH_BOUND_KIB, `peak RSS grew by ${mib(peak.hwmKiB - start.rssKiB)} MiB`);
    assert.ok(settled.rssKiB < peak.hwmKiB, 'RSS came down from its peak');
    assert.ok(settled.rssKiB - start.rssKiB <= SETTLED_GROWTH_BOUND_KIB, `RSS stayed ${mib(settled.rssKiB - start.rssKiB)} MiB above the start`);
  });
});
