import { execFile } from 'node:child_process';
import { readFile, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { descendantPids } from '../test/helpers/vsftpd.js';

// Numbers the benchmark reads off the machine: memory of a server's processes, free disk, medians.

/** Resident set size of one process, from /proc/PID/status (VmRSS, reported in kB). */
export async function processRssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/**
 * Proportional set size of a process and all its descendants (smaps_rollup's Pss, in kB). A forking server such as
 * vsftpd shares its parent's pages copy-on-write with every session process; PSS counts each shared page once in
 * total, so the sum is what the sessions really cost.
 */
export async function treePssBytes(pid: number): Promise<number> {
  let total = 0;
  for (const p of [pid, ...(await descendantPids(pid))]) {
    try {
      const rollup = await readFile(`/proc/${p}/smaps_rollup`, 'utf8');
      const m = /^Pss:\s+(\d+)\s+kB/m.exec(rollup);
      if (m !== null) total += Number(m[1]) * 1024;
    } catch {
      // The process ended between listing and reading.
    }
  }
  return total;
}

export async function freeDiskBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `fn` over `items` with at most `limit` running at once; results keep the items' order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** bench/tree-cpu.sh: the one place the server CPU is read, by the driver and by the client scripts alike. */
export const TREE_CPU_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'tree-cpu.sh');

/** A reading of tree-cpu.sh: wall clock (ns) and CPU seconds of a process tree so far. */
export interface CpuMark {
  ns: bigint;
  cpu: number;
}

/** Parses every "T<ns> C<seconds>" line of a client script's output, in order. */
export function parseCpuMarks(text: string): CpuMark[] {
  return [...text.matchAll(/^T(\d+) C([\d.]+)$/gm)].map((m) => ({ ns: BigInt(m[1]!), cpu: Number(m[2]) }));
}

/**
 * CPU seconds (user + system) used so far by `pid` and every process under it, reaped children included: for
 * ftpsd its one process (threads included), for a forking server its listener and every session process, live or
 * finished.
 */
export function treeCpuSeconds(pid: number): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile('sh', [TREE_CPU_SCRIPT, String(pid)], (err, stdout) => {
      const mark = parseCpuMarks(stdout)[0];
      if (err !== null || mark === undefined) reject(err ?? new Error(`tree-cpu.sh: ${stdout}`));
      else resolve(mark.cpu);
    });
  });
}
