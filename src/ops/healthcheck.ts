/**
 * Container health check: `node dist/ops/healthcheck.js` exits 0 when the server answers. With metrics enabled it
 * asks GET /healthz on the metrics listener; otherwise it reads the 220 greeting on the control port and says QUIT.
 * The configuration is found as `ftpsd serve` finds it (FTPSD_CONFIG, config/ftpsd.yaml, FTPSD_* overrides).
 */
import { existsSync } from 'node:fs';
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../config/load.js';
import { loopbackTarget } from './doctor.js';

export async function probeHealth(timeoutMs: number): Promise<{ ok: boolean; detail: string }> {
  const file = process.env.FTPSD_CONFIG !== undefined && process.env.FTPSD_CONFIG !== '' ? process.env.FTPSD_CONFIG : existsSync('config/ftpsd.yaml') ? 'config/ftpsd.yaml' : undefined;
  const { config } = loadConfig(file);
  if (config.metrics.enabled) {
    const host = loopbackTarget(config.metrics.host);
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${config.metrics.port}/healthz`;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      return { ok: res.status === 200, detail: `${url}: ${res.status}` };
    } catch (err) {
      return { ok: false, detail: `${url}: ${(err as Error).message}` };
    }
  }
  const host = loopbackTarget(config.listen.host);
  return new Promise((resolve) => {
    const socket = net.connect({ host, port: config.listen.port });
    const done = (ok: boolean, detail: string) => {
      socket.destroy();
      resolve({ ok, detail });
    };
    socket.setTimeout(timeoutMs, () => done(false, `no greeting within ${timeoutMs} ms`));
    socket.once('error', (err) => done(false, err.message));
    socket.once('data', (d) => {
      const line = d.toString('utf8').split('\r\n')[0] ?? '';
      socket.end('QUIT\r\n');
      done(line.startsWith('220'), line);
    });
  });
}

/** Docker's HEALTHCHECK has its own --timeout; this bound only keeps a hung probe from outliving it. */
const PROBE_TIMEOUT_MS = 5_000;

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await probeHealth(PROBE_TIMEOUT_MS).catch((err: unknown) => ({ ok: false, detail: (err as Error).message }));
  process.stdout.write(`${r.ok ? 'healthy' : 'unhealthy'}: ${r.detail}\n`);
  process.exit(r.ok ? 0 : 1);
}
