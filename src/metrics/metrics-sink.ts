/** What the server reports to metrics; the Prometheus registry implements it, and a no-op when metrics are off. */
export type TransferDirection = 'upload' | 'download' | 'listing';

export const LOGIN_RESULTS = ['ok', 'failed', 'refused'] as const;
export type LoginResult = (typeof LOGIN_RESULTS)[number];

export const DATA_CONNECTION_RESULTS = [
  'resumed',
  'resumed_sibling',
  'clear',
  'not_resumed_no_ticket',
  'not_resumed_foreign_session',
  'wrong_address',
  'handshake_failed',
  'timeout',
] as const;
export type DataConnectionResult = (typeof DATA_CONNECTION_RESULTS)[number];

export const TRANSFER_RESULTS = ['ok', 'aborted', 'failed'] as const;
export type TransferResult = (typeof TRANSFER_RESULTS)[number];

/**
 * State the metrics read when they are scraped rather than on every event: gauges that the server already keeps
 * (passive ports, bans, the certificate), and the verbs the server knows, which bound the `verb` label.
 */
export interface MetricsSource {
  knownVerbs(): Iterable<string>;
  passivePortsInUse(): number;
  passivePortsSize(): number;
  bansActive(): number;
  /** notAfter of the certificate new sessions are given, in ms since the epoch; null before one is installed. */
  certificateNotAfterMs(): number | null;
  /** True while the control port accepts sessions and the certificate is within its validity period. */
  ready(): boolean;
}

export interface MetricsSink {
  /** Called once by startServer before it accepts the first session. */
  attach(source: MetricsSource): void;
  sessionOpened(): void;
  sessionClosed(): void;
  command(verb: string, code: number): void;
  login(result: LoginResult): void;
  tlsHandshake(channel: 'control' | 'data', result: 'ok' | 'failed'): void;
  dataConnection(result: DataConnectionResult): void;
  transfer(direction: TransferDirection, result: TransferResult, bytes: number): void;
  passiveExhausted(): void;
  /** One HTTP request sent to an S3 store (retries included), by operation: PutObject, HeadObject, ListObjectsV2... */
  s3Request(op: string): void;
}

export const noMetrics: MetricsSink = {
  attach() {},
  sessionOpened() {},
  sessionClosed() {},
  command() {},
  login() {},
  tlsHandshake() {},
  dataConnection() {},
  transfer() {},
  passiveExhausted() {},
  s3Request() {},
};
