import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

// Summarises a V8 .cpuprofile (node --cpu-prof; npm run bench -- --cpu-prof DIR) as text: time by area, the
// heaviest functions by self time (bottom-up), and the call tree by total time (top-down), optionally divided by a
// count of work units (files, GB) so that each line reads "ms per file". Idle time is left out of every share.
// With --window, only the samples between the last two idle stretches of at least a second count: the
// profiling driver (bench/profile.ts) waits that long before and after the measured work, so start-up, preparation
// and shutdown stay out. Usage:
//   node --import tsx bench/profile-summary.ts FILE.cpuprofile [--per 200 --unit file] [--window] [--top 25] [--depth 12]

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    per: { type: 'string', default: '1' },
    unit: { type: 'string', default: 'run' },
    top: { type: 'string', default: '25' },
    depth: { type: 'string', default: '14' },
    // Top-down lines below this share of busy time are left out.
    min: { type: 'string', default: '0.01' },
    window: { type: 'boolean', default: false },
    // The shortest idle stretch --window takes for the quiet before and after the work (a server with timers that
    // fire every second or more often has no idle second).
    'idle-gap-ms': { type: 'string', default: '900' },
    // Bottom-up for one function: its self time by the chain of callers above it.
    callers: { type: 'string' },
  },
});
const file = positionals[0];
if (file === undefined) throw new Error('usage: profile-summary.ts FILE.cpuprofile [--per N --unit NAME]');
const per = Number(args.per);
const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const self = new Map<number, number>(); // µs
const isIdle = (id: number) => byId.get(id)!.callFrame.functionName === '(idle)';
/** Sample indexes [from, to) between the last two idle stretches of at least --idle-gap-ms. */
function measuredWindow(): [number, number] {
  const IDLE_GAP_US = Number(args['idle-gap-ms']) * 1000;
  const gaps: Array<[number, number]> = [];
  let start = -1;
  let idleUs = 0;
  for (let i = 0; i <= profile.samples.length; i++) {
    if (i < profile.samples.length && isIdle(profile.samples[i]!)) {
      if (start === -1) (start = i), (idleUs = 0);
      idleUs += profile.timeDeltas[i + 1] ?? 0;
      continue;
    }
    if (start !== -1 && idleUs >= IDLE_GAP_US) gaps.push([start, i]);
    start = -1;
  }
  if (gaps.length < 2) throw new Error('--window: no two idle stretches of --idle-gap-ms found');
  // The last two: a preparation before the work (files uploaded for a download run) has its own quiet before it.
  return [gaps[gaps.length - 2]![1], gaps[gaps.length - 1]![0]];
}
const [from, to] = args.window ? measuredWindow() : [0, profile.samples.length];
let windowUs = 0;
for (let i = from; i < to; i++) {
  const id = profile.samples[i]!;
  windowUs += Math.max(0, profile.timeDeltas[i + 1] ?? 0);
  // timeDeltas[i + 1] is the time from sample i to the next: the time sample i's stack stood for.
  self.set(id, (self.get(id) ?? 0) + Math.max(0, profile.timeDeltas[i + 1] ?? 0));
}
const total = new Map<number, number>();
const totalOf = (id: number): number => {
  const known = total.get(id);
  if (known !== undefined) return known;
  const n = byId.get(id)!;
  let t = self.get(id) ?? 0;
  for (const c of n.children ?? []) t += totalOf(c);
  total.set(id, t);
  return t;
};
const root = profile.nodes[0]!;
const idle = [...byId.values()].filter((n) => n.callFrame.functionName === '(idle)').reduce((s, n) => s + (self.get(n.id) ?? 0), 0);
const wall = windowUs;
const busy = totalOf(root.id) - idle;

const ms = (us: number) => us / 1000 / per;
const fmt = (us: number) => `${ms(us).toFixed(3).padStart(9)} ms/${args.unit}  ${((100 * us) / busy).toFixed(1).padStart(5)} %`;
const where = (f: CallFrame) => {
  const url = f.url.replace(/^file:\/\/.*?\/(src|dist|node_modules)\//, '$1/');
  return url === '' ? '' : ` ${url}:${f.lineNumber + 1}`;
};
const label = (f: CallFrame) => `${f.functionName || '(anonymous)'}${where(f)}`;

/** Coarse areas, by the script a sample's own function lives in. */
function area(f: CallFrame): string {
  const u = f.url;
  if (f.functionName === '(garbage collector)') return 'garbage collection';
  if (f.functionName === '(program)') return 'native, outside JS (libuv, OpenSSL, syscalls)';
  if (u === '') return `native: ${f.functionName}`;
  if (u.includes('/node_modules/pino') || u.includes('/node_modules/sonic-boom') || u.includes('fast-redact')) return 'logging (pino)';
  if (u.includes('/node_modules/')) return `npm: ${u.split('/node_modules/')[1]!.split('/')[0]}`;
  if (u.startsWith('node:internal/tls') || u.startsWith('node:tls') || u.startsWith('node:_tls')) return 'node: tls';
  if (u.startsWith('node:internal/streams') || u.startsWith('node:stream')) return 'node: streams';
  if (u.startsWith('node:internal/fs') || u.startsWith('node:fs')) return 'node: fs';
  if (u.startsWith('node:net') || u.startsWith('node:internal/stream_base')) return 'node: net';
  if (u.startsWith('node:')) return `node: ${u.slice(5).split('/').slice(0, 2).join('/')}`;
  const m = /\/(?:src|dist)\/(.*)$/.exec(u);
  return m ? `ftpsd: ${m[1]!.replace(/\.(js|ts)$/, '')}` : u;
}

const lines: string[] = [];
lines.push(`${file}: wall ${(wall / 1e6).toFixed(2)} s, busy (not idle) ${(busy / 1e6).toFixed(3)} s = ${ms(busy).toFixed(3)} ms/${args.unit} over ${per} ${args.unit}(s)`);

lines.push('', 'By area (self time):');
const areas = new Map<string, number>();
for (const n of profile.nodes) {
  if (n.callFrame.functionName === '(idle)') continue;
  const a = area(n.callFrame);
  areas.set(a, (areas.get(a) ?? 0) + (self.get(n.id) ?? 0));
}
for (const [a, us] of [...areas].sort((x, y) => y[1] - x[1]).slice(0, Number(args.top))) lines.push(`${fmt(us)}  ${a}`);

lines.push('', 'Bottom-up (self time by function):');
const fns = new Map<string, number>();
for (const n of profile.nodes) {
  if (n.callFrame.functionName === '(idle)') continue;
  const k = label(n.callFrame);
  fns.set(k, (fns.get(k) ?? 0) + (self.get(n.id) ?? 0));
}
for (const [k, us] of [...fns].sort((x, y) => y[1] - x[1]).slice(0, Number(args.top))) lines.push(`${fmt(us)}  ${k}`);

lines.push('', 'Top-down (total time):');
const minUs = busy * Number(args.min);
const walk = (id: number, depth: number) => {
  const n = byId.get(id)!;
  if (n.callFrame.functionName === '(idle)') return;
  const t = totalOf(id);
  if (t < minUs) return;
  if (depth > 0) lines.push(`${fmt(t)}  ${'  '.repeat(depth - 1)}${label(n.callFrame)}`);
  if (depth >= Number(args.depth)) return;
  for (const c of [...(n.children ?? [])].sort((a, b) => totalOf(b) - totalOf(a))) walk(c, depth + 1);
};
walk(root.id, 0);
if (args.callers !== undefined) {
  lines.push('', `Callers of ${args.callers} (self time by caller chain):`);
  const chains = new Map<string, number>();
  for (const n of profile.nodes) {
    if (n.callFrame.functionName !== args.callers) continue;
    const chain: string[] = [];
    for (let p = parent.get(n.id); p !== undefined && chain.length < 6; p = parent.get(p)) chain.push(label(byId.get(p)!.callFrame));
    const k = chain.join(' < ');
    chains.set(k, (chains.get(k) ?? 0) + (self.get(n.id) ?? 0));
  }
  for (const [k, us] of [...chains].sort((x, y) => y[1] - x[1]).slice(0, Number(args.top))) lines.push(`${fmt(us)}  ${k}`);
}
console.log(lines.join('\n'));
