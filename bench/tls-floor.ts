import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { dirname, join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createSelfSignedCertificate } from '../src/tls/self-signed.js';
import { observedTls } from './observed-tls.js';

// The floor under ftpsd's per-file cost: a bare Node TLS server on loopback that takes N connections, each a resumed
// handshake and SIZE bytes up, ended with close_notify both ways, and does nothing else (no FTP, no file, no log).
// Prints its own CPU time (user + system, process.cpuUsage) per connection, for the TLS layer ftpsd uses for
// downloads (native: OpenSSL on the socket) and the one it uses for uploads (observed: TLS fed through a JS duplex,
// which tells a close_notify from a cut connection), and optionally a TCP listener opened and closed per connection
// as PASV does.
// Usage: node --import tsx bench/tls-floor.ts [--connections 500] [--size 4096] [--tls12] [--rounds 3]

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '500' },
    size: { type: 'string', default: '4096' },
    rounds: { type: 'string', default: '3' },
    tls12: { type: 'boolean', default: false },
  },
});
const n = Number(args.connections);
// The same kind of certificate ftpsd makes for itself (ECDSA P-256).
const { keyPem, certPem } = await createSelfSignedCertificate({ names: ['localhost'] });
const context = tls.createSecureContext({ key: keyPem, cert: certPem });

type Mode = 'native' | 'observed' | 'native+listener' | 'observed+listener';

function wrap(raw: net.Socket, observed: boolean): tls.TLSSocket {
  const options: tls.TLSSocketOptions = { isServer: true, secureContext: context };
  return observed ? observedTls(raw, options).socket : new tls.TLSSocket(raw, options);
}

async function run(mode: Mode): Promise<{ cpuMsPerConnection: number; wallMsPerConnection: number; resumed: number }> {
  const observed = mode.startsWith('observed');
  const perConnectionListener = mode.endsWith('+listener');
  let served = 0;
  let resumed = 0;
  let cpuStart: NodeJS.CpuUsage | null = null;
  const handle = (raw: net.Socket) => {
    raw.setNoDelay(true);
    // The first connection is a full handshake: the clock starts after it.
    if (served === 1 && cpuStart === null) cpuStart = process.cpuUsage();
    const socket = wrap(raw, observed);
    socket.on('error', () => undefined);
    socket.on('secure', () => {
      if (socket.isSessionReused()) resumed++;
    });
    socket.on('data', () => undefined);
    socket.on('end', () => {
      served++;
      socket.end();
    });
  };
  const main = net.createServer(perConnectionListener ? () => undefined : handle);
  main.listen(0, '127.0.0.1');
  await once(main, 'listening');
  const port = (main.address() as net.AddressInfo).port;
  if (perConnectionListener) {
    // Each connection first passes through a listener created for it and closed at once, as a passive data port is.
    main.removeAllListeners('connection');
    main.on('connection', (raw: net.Socket) => {
      const pasv = net.createServer();
      pasv.listen(0, '127.0.0.1', () => {
        pasv.close();
        handle(raw);
      });
    });
  }
  const client = spawn('python3', [join(here, 'tls_floor_client.py'), String(port), String(n), args.size, ...(args.tls12 ? ['TLS12'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  client.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const [code] = (await once(client, 'exit')) as [number];
  const cpu = process.cpuUsage(cpuStart ?? undefined);
  main.close();
  if (code !== 0) throw new Error(`client failed (${code})`);
  const wall = Number(/([\d.]+) ms each/.exec(out)?.[1] ?? NaN);
  return { cpuMsPerConnection: (cpu.user + cpu.system) / 1000 / (n - 1), wallMsPerConnection: wall, resumed };
}

const modes: Mode[] = ['native', 'observed', 'native+listener', 'observed+listener'];
const results = new Map<Mode, number[]>(modes.map((m) => [m, []]));
for (let round = 0; round < Number(args.rounds); round++) {
  // Alternating order, so that a busy moment on a shared machine does not land on one mode only.
  for (const mode of round % 2 === 0 ? modes : [...modes].reverse()) {
    const r = await run(mode);
    results.get(mode)!.push(r.cpuMsPerConnection);
    console.log(`round ${round + 1} ${mode}: ${r.cpuMsPerConnection.toFixed(3)} ms CPU, ${r.wallMsPerConnection} ms wall per connection, ${r.resumed} of ${n} resumed`);
  }
}
for (const mode of modes) {
  const v = [...results.get(mode)!].sort((a, b) => a - b);
  console.log(`${mode}: median ${v[Math.floor(v.length / 2)]!.toFixed(3)} ms server CPU per connection (${args.tls12 ? 'TLS 1.2' : 'TLS 1.3'}, ${args.size} bytes)`);
}
