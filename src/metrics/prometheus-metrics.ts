import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import {
  DATA_CONNECTION_RESULTS,
  LOGIN_RESULTS,
  TRANSFER_RESULTS,
  type DataConnectionResult,
  type LoginResult,
  type MetricsSink,
  type MetricsSource,
  type TransferDirection,
  type TransferResult,
} from './metrics-sink.js';

/** Every series this server exports starts with this, the default process and Node.js metrics included. */
export const METRIC_PREFIX = 'ftpsd_';

/** Verbs a client sends that the server does not know share one label value, so a client cannot grow the series. */
export const OTHER_VERB = 'other';

const DIRECTIONS: readonly TransferDirection[] = ['upload', 'download', 'listing'];
const REPLY_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/**
 * The Prometheus side of MetricsSink. Counters move on events; gauges that the server already tracks are read when
 * scraped, through the MetricsSource given to attach(). One registry per instance, so several servers in one process
 * (tests) do not share series.
 */
export class PrometheusMetrics implements MetricsSink {
  readonly registry = new Registry();
  #source: MetricsSource | null = null;
  #verbs: ReadonlySet<string> = new Set();

  readonly #sessionsOpen: Gauge;
  readonly #sessionsTotal: Counter;
  readonly #logins: Counter<'result'>;
  readonly #commands: Counter<'verb' | 'class'>;
  readonly #tlsHandshakes: Counter<'channel' | 'result'>;
  readonly #dataConnections: Counter<'result'>;
  readonly #transfers: Counter<'direction' | 'result'>;
  readonly #transferBytes: Counter<'direction' | 'result'>;
  readonly #passiveExhausted: Counter;
  readonly #s3Requests: Counter<'op'>;

  constructor() {
    const registers = [this.registry];
    const name = (n: string) => `${METRIC_PREFIX}${n}`;
    this.#sessionsOpen = new Gauge({ name: name('sessions_open'), help: 'Control sessions currently open', registers });
    this.#sessionsTotal = new Counter({ name: name('sessions_total'), help: 'Control sessions accepted since start', registers });
    this.#logins = new Counter({ name: name('logins_total'), help: 'Login attempts by result (ok, failed password or user, refused by policy)', labelNames: ['result'], registers });
    this.#commands = new Counter({ name: name('commands_total'), help: 'Commands answered, by verb and reply class', labelNames: ['verb', 'class'], registers });
    this.#tlsHandshakes = new Counter({ name: name('tls_handshakes_total'), help: 'TLS handshakes by channel and result', labelNames: ['channel', 'result'], registers });
    this.#dataConnections = new Counter({
      name: name('data_connections_total'),
      help: 'Data connections by outcome: resumed the control TLS session, or why it was refused',
      labelNames: ['result'],
      registers,
    });
    this.#transfers = new Counter({ name: name('transfers_total'), help: 'Transfers by direction and result', labelNames: ['direction', 'result'], registers });
    this.#transferBytes = new Counter({ name: name('transfer_bytes_total'), help: 'Bytes moved on data connections, by direction and result', labelNames: ['direction', 'result'], registers });
    this.#passiveExhausted = new Counter({ name: name('passive_ports_exhausted_total'), help: 'PASV/EPSV requests that found no free port in the range', registers });
    this.#s3Requests = new Counter({ name: name('s3_requests_total'), help: 'HTTP requests sent to S3 stores (retries included), by operation', labelNames: ['op'], registers });

    const source = () => this.#source;
    new Gauge({ name: name('passive_ports_in_use'), help: 'Passive ports bound right now', registers, collect() { this.set(source()?.passivePortsInUse() ?? 0); } });
    new Gauge({ name: name('passive_ports_size'), help: 'Ports in the configured passive range', registers, collect() { this.set(source()?.passivePortsSize() ?? 0); } });
    new Gauge({ name: name('bans_active'), help: 'Addresses banned by the defender right now', registers, collect() { this.set(source()?.bansActive() ?? 0); } });
    new Gauge({
      name: name('certificate_expiry_timestamp_seconds'),
      help: 'notAfter of the certificate given to new sessions, in seconds since the epoch',
      registers,
      collect() {
        const ms = source()?.certificateNotAfterMs() ?? null;
        if (ms !== null) this.set(ms / 1000);
      },
    });
    new Gauge({ name: name('ready'), help: '1 when the server accepts sessions with a valid certificate (as /readyz)', registers, collect() { this.set(source()?.ready() === true ? 1 : 0); } });

    // Process metrics and the event-loop delay (nodejs_eventloop_lag_*), prefixed like everything else.
    collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });

    // Series that exist from the start read 0 instead of being absent, so rate() and alerts work before the first event.
    for (const result of LOGIN_RESULTS) this.#logins.inc({ result }, 0);
    for (const result of DATA_CONNECTION_RESULTS) this.#dataConnections.inc({ result }, 0);
    for (const direction of DIRECTIONS) {
      for (const result of TRANSFER_RESULTS) {
        this.#transfers.inc({ direction, result }, 0);
        this.#transferBytes.inc({ direction, result }, 0);
      }
    }
  }

  attach(source: MetricsSource): void {
    this.#source = source;
    this.#verbs = new Set([...source.knownVerbs()].map((v) => v.toUpperCase()));
  }

  sessionOpened(): void {
    this.#sessionsOpen.inc();
    this.#sessionsTotal.inc();
  }

  sessionClosed(): void {
    this.#sessionsOpen.dec();
  }

  command(verb: string, code: number): void {
    const upper = verb.toUpperCase();
    const cls = REPLY_CLASSES[Math.floor(code / 100) - 1] ?? '5xx';
    this.#commands.inc({ verb: this.#verbs.has(upper) ? upper : OTHER_VERB, class: cls });
  }

  login(result: LoginResult): void {
    this.#logins.inc({ result });
  }

  tlsHandshake(channel: 'control' | 'data', result: 'ok' | 'failed'): void {
    this.#tlsHandshakes.inc({ channel, result });
  }

  dataConnection(result: DataConnectionResult): void {
    this.#dataConnections.inc({ result });
  }

  transfer(direction: TransferDirection, result: TransferResult, bytes: number): void {
    this.#transfers.inc({ direction, result });
    if (bytes > 0) this.#transferBytes.inc({ direction, result }, bytes);
  }

  passiveExhausted(): void {
    this.#passiveExhausted.inc();
  }

  s3Request(op: string): void {
    this.#s3Requests.inc({ op });
  }

  /** The text exposition format, for GET /metrics. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
