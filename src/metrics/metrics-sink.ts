/** What the server reports to metrics; the Prometheus registry implements it, and a no-op when metrics are off. */
export type TransferDirection = 'upload' | 'download' | 'listing';

export interface MetricsSink {
  sessionOpened(): void;
  sessionClosed(): void;
  command(verb: string, code: number): void;
  login(result: 'ok' | 'failed' | 'refused'): void;
  tlsHandshake(channel: 'control' | 'data', result: 'ok' | 'failed'): void;
  dataConnection(result: 'resumed' | 'clear' | 'not_resumed_no_ticket' | 'not_resumed_foreign_session' | 'wrong_address' | 'handshake_failed' | 'timeout'): void;
  transfer(direction: TransferDirection, result: 'ok' | 'aborted' | 'failed', bytes: number): void;
  passiveExhausted(): void;
}

export const noMetrics: MetricsSink = {
  sessionOpened() {},
  sessionClosed() {},
  command() {},
  login() {},
  tlsHandshake() {},
  dataConnection() {},
  transfer() {},
  passiveExhausted() {},
};
