import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';

export interface Readiness {
  ready: boolean;
  /** Why the server is not ready, one short phrase each (empty when ready). */
  problems: string[];
}

export interface MetricsEndpoint {
  render(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsServerOptions {
  host: string;
  port: number;
  metrics: MetricsEndpoint;
  readiness: () => Readiness;
  log: Logger;
}

export interface MetricsServer {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** How long a scraper may take to send its request before the socket is dropped. */
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * The operations listener, apart from the FTP port so it can stay on loopback or a management network:
 * GET /metrics (Prometheus text format), /healthz (the process answers) and /readyz (sessions can be served).
 */
export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const server = http.createServer({ requestTimeout: REQUEST_TIMEOUT_MS }, (req, res) => {
    void handle(opts, req, res);
  });
  server.on('error', (err) => opts.log.error({ err }, 'metrics listener error'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: opts.host, port: opts.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  opts.log.info({ event: 'metrics_listening', host: address.address, port: address.port }, 'metrics listening');
  let closing: Promise<void> | null = null;
  return {
    host: address.address,
    port: address.port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function handle(opts: MetricsServerOptions, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
  try {
    switch (path) {
      case '/metrics':
        return send(res, 200, await opts.metrics.render(), { 'content-type': opts.metrics.contentType });
      case '/healthz':
        return send(res, 200, 'ok\n');
      case '/readyz': {
        const r = opts.readiness();
        return send(res, r.ready ? 200 : 503, r.ready ? 'ready\n' : `not ready: ${r.problems.join('; ')}\n`);
      }
      default:
        return send(res, 404, 'not found: try /metrics, /healthz or /readyz\n');
    }
  } catch (err) {
    opts.log.error({ err, path }, 'metrics request failed');
    return send(res, 500, 'internal error\n');
  }
}

function send(res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(body);
}
