import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

// ftpsd_events_*: what the durable queue does on this node (queued, delivered, failed attempts, dead letters, and how
// long an event took from happening to being delivered), and what waits in the store for every node.

export interface EventMetrics {
  queued(deliveries: number): void;
  delivered(latencyMs: number): void;
  attemptFailed(): void;
  deadLettered(): void;
}

export const noEventMetrics: EventMetrics = { queued() {}, delivered() {}, attemptFailed() {}, deadLettered() {} };

export function prometheusEventMetrics(registry: Registry, waiting: () => Promise<{ pending: number; failed: number }>): EventMetrics {
  const registers = [registry];
  const queued = new Counter({ name: 'ftpsd_events_queued_total', help: 'Event deliveries queued by this node (one per event and action)', registers });
  const delivered = new Counter({ name: 'ftpsd_events_delivered_total', help: 'Event deliveries completed by this node', registers });
  const failed = new Counter({ name: 'ftpsd_events_failed_total', help: 'Event delivery attempts that failed on this node (each is retried until maxAttempts)', registers });
  const dead = new Counter({ name: 'ftpsd_events_dead_letter_total', help: 'Event deliveries this node gave up on after events.maxAttempts (ftpsd events list --failed)', registers });
  const latency = new Histogram({
    name: 'ftpsd_events_delivery_latency_seconds',
    help: 'From the event to its successful delivery, retries included',
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600, 3600, 14400],
    registers,
  });
  let last = { pending: 0, failed: 0 };
  const read = async () => {
    try {
      last = await waiting();
    } catch {
      // The store is unreachable: the last known values, rather than a failed scrape.
    }
    return last;
  };
  new Gauge({ name: 'ftpsd_events_pending', help: 'Deliveries waiting in the store (all nodes)', registers, async collect() { this.set((await read()).pending); } });
  new Gauge({ name: 'ftpsd_events_dead_letters', help: 'Dead-letter deliveries in the store (all nodes)', registers, async collect() { this.set((await read()).failed); } });
  return {
    queued: (n) => queued.inc(n),
    delivered: (ms) => {
      delivered.inc();
      latency.observe(Math.max(0, ms) / 1000);
    },
    attemptFailed: () => failed.inc(),
    deadLettered: () => dead.inc(),
  };
}
