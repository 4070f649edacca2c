import type { Command } from 'commander';
import type { LoadedConfig } from '../config/load.js';
import { getEventPayload, listDeliveries, retryDeliveries, type DeliveryRecord } from '../store/event-repo.js';
import { withStore } from './store-cli.js';

export interface EventCommandDeps {
  loadConfig: (file?: string) => LoadedConfig;
}

/** `ftpsd events list [--failed]`, `ftpsd events retry ID`, `ftpsd events show EVENT_ID`. */
export function registerEventCommands(program: Command, deps: EventCommandDeps): void {
  const events = program.command('events').description('event hook deliveries: the durable queue and its dead letters');

  events
    .command('list')
    .description('deliveries, newest first')
    .option('--failed', 'only dead letters (deliveries that ran out of attempts)')
    .option('--pending', 'only deliveries still waiting')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'one JSON object per line')
    .option('-c, --config <file>', 'configuration file')
    .action(async (opts: { failed?: boolean; pending?: boolean; limit: string; json?: boolean; config?: string }) => {
      const state = opts.failed === true ? 'failed' : opts.pending === true ? 'pending' : undefined;
      const rows = await withStore(deps.loadConfig(opts.config), (store) => listDeliveries(store.db, { ...(state === undefined ? {} : { state }), limit: Number(opts.limit) }));
      if (opts.json === true) {
        for (const r of rows) console.log(JSON.stringify(r));
        return;
      }
      if (rows.length === 0) {
        console.log(state === 'failed' ? 'no failed deliveries' : 'no deliveries');
        return;
      }
      console.log(['ID', 'STATE', 'TRIES', 'EVENT', 'EVENT ID', 'ACTION', 'AT', 'LAST ERROR'].join('\t'));
      for (const r of rows) console.log(formatRow(r));
    });

  events
    .command('retry')
    .description('send dead letters again from now: a delivery ID, or an event ID (all its failed deliveries)')
    .argument('<id>', 'delivery id (a number, from `ftpsd events list`) or event id')
    .option('-c, --config <file>', 'configuration file')
    .action(async (id: string, opts: { config?: string }) => {
      const target = /^\d+$/.test(id) ? Number(id) : id;
      const n = await withStore(deps.loadConfig(opts.config), (store) => retryDeliveries(store.db, target, Date.now()));
      if (n === 0) {
        console.error(`ftpsd: no failed delivery ${id}`);
        process.exitCode = 1;
        return;
      }
      console.log(`queued ${n} ${n === 1 ? 'delivery' : 'deliveries'} again; a running server sends ${n === 1 ? 'it' : 'them'} within events.pollIntervalMs`);
    });

  events
    .command('show')
    .description('the payload of an event, as its actions receive it')
    .argument('<event-id>')
    .option('-c, --config <file>', 'configuration file')
    .action(async (id: string, opts: { config?: string }) => {
      const payload = await withStore(deps.loadConfig(opts.config), (store) => getEventPayload(store.db, id));
      if (payload === null) {
        console.error(`ftpsd: no event ${id}`);
        process.exitCode = 1;
        return;
      }
      console.log(JSON.stringify(payload, null, 2));
    });
}

function formatRow(r: DeliveryRecord): string {
  return [r.id, r.state, r.attempts, r.eventType, r.eventId, r.action, new Date(r.eventAt).toISOString(), r.lastError ?? ''].join('\t');
}
