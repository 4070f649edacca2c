import type { Command } from 'commander';
import { pino } from 'pino';
import type { Config } from '../config/schema.js';
import { storeBanPersistence } from '../store/ban-repo.js';
import { withStore } from './store-cli.js';
import { canonicalIp } from '../defender/cidr.js';
import { type BanInfo, Defender, DefenderError } from '../defender/defender.js';

// `ftpsd ban list|add|remove`: edits the bans in the store. A running server reads them every
// defender.fileWatchIntervalMs, so changes reach it (and every other node on the same store) without a restart.

export interface BanCommandDeps {
  loadConfig: (file?: string) => { config: Config; baseDir: string; file?: string | null };
  /** Where output goes; the console by default (tests capture it). */
  out?: (line: string) => void;
  err?: (line: string) => void;
  /** Sets the process exit code; process.exitCode by default. */
  setExitCode?: (code: number) => void;
}

interface CommonOptions {
  config?: string;
}

export function registerBanCommands(program: Command, deps: BanCommandDeps): void {
  const out = deps.out ?? ((line: string) => console.log(line));
  const err = deps.err ?? ((line: string) => console.error(line));
  const fail = (message: string) => {
    err(message);
    (deps.setExitCode ?? ((code: number) => void (process.exitCode = code)))(1);
  };

  /** Runs `fn` on a Defender over the store's bans; reports configuration and store errors plainly. */
  const withDefender = async (opts: CommonOptions, fn: (d: Defender, config: Config, where: string) => void) => {
    let loaded;
    try {
      loaded = deps.loadConfig(opts.config);
    } catch (e) {
      fail((e as Error).message);
      return;
    }
    const { config } = loaded;
    const log = pino({ level: 'error', base: undefined }, pino.destination({ fd: 2, sync: true }));
    try {
      await withStore({ ...loaded, file: null }, async (store) => {
        // No polling and no delayed save: this process lives for one command and writes when it closes.
        const defender = new Defender({ config: { ...config.defender, fileWatchIntervalMs: 0, saveDelayMs: 0 }, persistence: storeBanPersistence(store.db, store.location, store.engine), log });
        await defender.ready;
        try {
          fn(defender, config, store.location);
        } catch (e) {
          fail(e instanceof DefenderError ? e.message : `error: ${(e as Error).message}`);
        } finally {
          await defender.close();
        }
      });
    } catch (e) {
      fail((e as Error).message);
    }
  };

  const ban = program.command('ban').description("list, add and remove IP bans (the defender's, in the store)");

  ban
    .command('list')
    .description('show active bans')
    .option('-c, --config <file>', 'configuration file')
    .action(async (opts: CommonOptions) =>
      await withDefender(opts, (d, config, where) => {
        const bans = d.list();
        out(`bans in: ${where}`);
        if (!config.defender.enabled) out('note: defender.enabled is false, so bans are not enforced');
        if (bans.length === 0) {
          out('no active bans');
          return;
        }
        for (const line of formatBanTable(bans, Date.now())) out(line);
      }),
    );

  ban
    .command('add <ip>')
    .description('ban an IP address (a running server closes its sessions within seconds)')
    .option('-c, --config <file>', 'configuration file')
    .option('-m, --minutes <n>', 'ban duration in minutes (default: defender.banMs)')
    .option('-r, --reason <text>', 'reason shown in the list', 'manual')
    .action(async (ipArg: string, opts: CommonOptions & { minutes?: string; reason: string }) => {
      if (canonicalIp(ipArg) === null) return fail(`not an IP address: ${ipArg}`);
      const minutes = opts.minutes === undefined ? undefined : Number(opts.minutes);
      if (minutes !== undefined && !(Number.isFinite(minutes) && minutes > 0)) return fail(`--minutes must be a positive number, got ${opts.minutes}`);
      await withDefender(opts, (d, config) => {
        const ms = minutes === undefined ? config.defender.banMs : Math.round(minutes * 60_000);
        const info = d.ban(ipArg, ms, opts.reason);
        out(`banned ${info.ip} until ${new Date(info.until).toISOString()} (${formatDuration(ms)}, offence ${info.offences})`);
        if (!config.defender.enabled) out('note: defender.enabled is false, so bans are not enforced');
      });
    });

  ban
    .command('remove <ip>')
    .alias('rm')
    .description('lift a ban and forget the offences of an IP address')
    .option('-c, --config <file>', 'configuration file')
    .action(async (ipArg: string, opts: CommonOptions) => {
      const ip = canonicalIp(ipArg);
      if (ip === null) return fail(`not an IP address: ${ipArg}`);
      await withDefender(opts, (d) => {
        out(d.unban(ip) ? `unbanned ${ip}` : `${ip} was not banned (its offence history, if any, is cleared)`);
      });
    });
}

export function formatBanTable(bans: readonly BanInfo[], now: number): string[] {
  const rows = bans.map((b) => [b.ip, new Date(b.until).toISOString(), formatDuration(b.until - now), String(b.offences), b.reason]);
  const header = ['IP', 'UNTIL (UTC)', 'LEFT', 'OFFENCES', 'REASON'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const format = (cols: string[]) =>
    cols
      .map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [format(header), ...rows.map(format)];
}

export function formatDuration(ms: number): string {
  const totalSeconds = Math.max(0, Math.round(ms / 1000));
  const d = Math.floor(totalSeconds / 86_400);
  const h = Math.floor((totalSeconds % 86_400) / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  const parts = [d > 0 ? `${d}d` : '', h > 0 ? `${h}h` : '', m > 0 ? `${m}m` : '', s > 0 || totalSeconds === 0 ? `${s}s` : ''];
  return parts.filter((p) => p !== '').join(' ');
}
