import { EventEmitter } from 'node:events';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { type BanFileState, type BanPersistence, type BanRecord, fileBanPersistence, type OffenceRecord } from './ban-file.js';
import { canonicalIp, CidrSet, normalizeIp } from './cidr.js';

// Scores misbehaviour per IP over a sliding window and bans an IP whose score reaches the threshold. Repeat offenders
// get longer bans. Bans and offence history persist (in the store; a JSON file for tools and tests) so they survive
// restarts and so `ftpsd ban` (or another node sharing the store) can change them while the server runs.

export type DefenderConfig = Config['defender'];
export type OffenceKind = keyof DefenderConfig['scores'];

export interface BanInfo {
  ip: string;
  /** Epoch milliseconds when the ban ends. */
  until: number;
  reason: string;
  /** How many bans this IP has had within defender.offenceMemoryMs, this one included. */
  offences: number;
}

export type UnbanReason = 'manual' | 'expired' | 'file';

/** Where a ban comes from: imposed by this process, or read from the store (`ftpsd ban`, another node). */
export type BanOrigin = 'local' | 'store';

export interface DefenderEvents {
  /** An IP was banned, here or by a change to the bans file: close its sessions. */
  ban: [BanInfo, BanOrigin];
  unban: [{ ip: string; reason: UnbanReason }];
}

export interface DefenderOptions {
  config: DefenderConfig;
  /** Where bans persist: the store's (see store/ban-repo.ts), or a JSON file given by `file`. */
  persistence?: BanPersistence;
  /** A bans file, when no persistence is given. */
  file?: string;
  log: Logger;
  /** Clock, for tests. */
  now?: () => number;
}

export type DefenderErrorCode = 'invalid_ip' | 'allow_listed' | 'invalid_duration';

export class DefenderError extends Error {
  constructor(
    readonly code: DefenderErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DefenderError';
  }
}

interface Hit {
  at: number;
  points: number;
}

export class Defender extends EventEmitter<DefenderEvents> {
  readonly #config: DefenderConfig;
  readonly #store: BanPersistence;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #allow: CidrSet;
  /** Recent scored events per IP. Each hit carries at least one point, so a list never grows past the threshold. */
  readonly #hits = new Map<string, Hit[]>();
  readonly #bans = new Map<string, BanRecord>();
  readonly #offences = new Map<string, OffenceRecord>();
  /** IPs changed in memory since the last write, with a change counter; for them memory wins when merging. */
  readonly #dirty = new Map<string, number>();
  #changes = 0;
  #saveTimer: NodeJS.Timeout | null = null;
  readonly #pruneTimer: NodeJS.Timeout;
  #watchTimer: NodeJS.Timeout | null = null;
  /** Loads and saves run one at a time, in order. */
  #io: Promise<unknown> = Promise.resolve();
  #closed = false;
  #closing: Promise<void> | null = null;
  /** Settles once the persisted bans are loaded (at once for a file). */
  readonly ready: Promise<void>;

  constructor(options: DefenderOptions) {
    super();
    this.#config = options.config;
    if (options.persistence === undefined && options.file === undefined) throw new TypeError('Defender needs persistence or a file');
    this.#store = options.persistence ?? fileBanPersistence(options.file!);
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.#allow = new CidrSet(options.config.allowList);
    const loaded = () => {
      if (this.#bans.size > 0) this.#log.info({ event: 'bans_loaded', bans: this.#bans.size, from: this.#store.describe }, 'defender bans loaded');
    };
    let first: BanFileState | Promise<BanFileState> | null = null;
    try {
      first = this.#store.load(this.#now());
    } catch (err) {
      this.#unreadable(err);
    }
    if (first instanceof Promise) {
      this.ready = first.then((state) => {
        this.#merge(state, true);
        loaded();
      }, (err: unknown) => this.#unreadable(err));
      this.#io = this.ready;
    } else {
      if (first !== null) this.#merge(first, true);
      loaded();
      this.ready = Promise.resolve();
    }
    this.#pruneTimer = setInterval(() => this.prune(), this.#config.pruneIntervalMs);
    this.#pruneTimer.unref();
    if (this.#config.fileWatchIntervalMs > 0) {
      // Polling works alike for a file (also on network file systems, where inotify sees no remote changes) and for
      // the store, where `ftpsd ban` and other nodes write.
      this.#watchTimer = setInterval(() => void this.reload(), this.#config.fileWatchIntervalMs);
      this.#watchTimer.unref();
    }
  }

  /**
   * Adds the configured score for `kind` to the IP's score over the last defender.windowMs and bans the IP when the
   * total reaches defender.threshold. Returns the ban when this call imposed one.
   */
  record(ip: string, kind: OffenceKind, details?: Record<string, unknown>): BanInfo | null {
    if (!this.#config.enabled || this.#closed) return null;
    const points = this.#config.scores[kind];
    const addr = canonicalIp(ip);
    if (points === 0 || addr === null || this.#allow.has(addr)) return null;
    const now = this.#now();
    const ban = this.#bans.get(addr);
    if (ban !== undefined && ban.until > now) return null;

    const since = now - this.#config.windowMs;
    const hits = (this.#hits.get(addr) ?? []).filter((h) => h.at > since);
    hits.push({ at: now, points });
    this.#hits.delete(addr); // re-insert so Map order is least recently scored first, for eviction
    const score = hits.reduce((sum, h) => sum + h.points, 0);
    this.#log.debug({ event: 'defender_score', ip: addr, kind, score }, 'defender score');
    if (score < this.#config.threshold) {
      this.#hits.set(addr, hits);
      this.#evictOver(this.#hits);
      return null;
    }
    const previous = this.#previousOffences(addr, now);
    const duration = Math.min(this.#config.banMs * this.#config.banMultiplier ** previous, this.#config.maxBanMs);
    return this.#impose(addr, now, duration, kind, details);
  }

  /** Whether the IP is banned now. A Map lookup: cheap enough for every accepted connection, before TLS. */
  isBanned(ip: string): boolean {
    if (!this.#config.enabled) return false;
    const ban = this.#bans.get(normalizeIp(ip));
    return ban !== undefined && ban.until > this.#now();
  }

  /** How many bans are in force, without building the list (for metrics). */
  activeBanCount(): number {
    const now = this.#now();
    let n = 0;
    for (const ban of this.#bans.values()) if (ban.until > now) n++;
    return n;
  }

  /** Active bans, soonest to end first. */
  list(): BanInfo[] {
    const now = this.#now();
    return [...this.#bans.values()].filter((b) => b.until > now).sort((a, b) => a.until - b.until).map((b) => ({ ...b }));
  }

  /** Bans an IP for `ms` milliseconds (the CLI's `ban add`). Counts as an offence. */
  ban(ip: string, ms: number, reason: string): BanInfo {
    const addr = canonicalIp(ip);
    if (addr === null) throw new DefenderError('invalid_ip', `not an IP address: ${ip}`);
    if (this.#allow.has(addr)) throw new DefenderError('allow_listed', `${addr} is in defender.allowList and cannot be banned`);
    if (!Number.isFinite(ms) || ms <= 0) throw new DefenderError('invalid_duration', `ban duration must be positive, got ${ms}`);
    this.#hits.delete(addr);
    return this.#impose(addr, this.#now(), ms, reason);
  }

  /** Lifts a ban and forgets the IP's offences, so a later ban starts again at defender.banMs. */
  unban(ip: string): boolean {
    const addr = canonicalIp(ip);
    if (addr === null) throw new DefenderError('invalid_ip', `not an IP address: ${ip}`);
    const ban = this.#bans.get(addr);
    const wasBanned = ban !== undefined && ban.until > this.#now();
    this.#bans.delete(addr);
    this.#offences.delete(addr);
    this.#hits.delete(addr);
    this.#markDirty(addr);
    if (wasBanned) {
      this.#log.info({ event: 'unban', ip: addr, reason: 'manual' }, 'defender unban');
      this.emit('unban', { ip: addr, reason: 'manual' });
    }
    return wasBanned;
  }

  /**
   * Merges the bans file into memory: the file wins for every IP not changed here since the last write. Called at
   * construction, when the file changes on disk, and by the server on SIGHUP. Returns false when the file could not
   * be read (logged); memory is then left as it was.
   */
  reload(): Promise<boolean> {
    const run = this.#io.then(() => this.#load());
    this.#io = run;
    return run;
  }

  async #load(): Promise<boolean> {
    if (this.#closed) return false;
    let state: BanFileState;
    try {
      state = await this.#store.load(this.#now());
    } catch (err) {
      this.#unreadable(err);
      return false;
    }
    this.#merge(state, false);
    return true;
  }

  #unreadable(err: unknown): void {
    this.#log.error({ err, from: this.#store.describe }, 'defender bans unreadable');
  }

  #merge(state: BanFileState, quiet: boolean): void {
    const now = this.#now();
    const fileBans = new Map(state.bans.map((b) => [b.ip, b]));
    for (const [ip, ban] of this.#bans) {
      if (this.#dirty.has(ip) || fileBans.has(ip)) continue;
      this.#bans.delete(ip);
      if (ban.until > now) {
        this.#log.info({ event: 'unban', ip, reason: 'file' }, 'defender unban');
        this.emit('unban', { ip, reason: 'file' });
      }
    }
    for (const ban of fileBans.values()) {
      if (this.#dirty.has(ban.ip) || this.#allow.has(ban.ip)) continue;
      const current = this.#bans.get(ban.ip);
      if (current !== undefined && current.until === ban.until && current.reason === ban.reason) continue;
      this.#bans.set(ban.ip, ban);
      if (!quiet && (current === undefined || current.until <= now)) {
        this.#log.info({ event: 'ban_loaded', ip: ban.ip, untilIso: new Date(ban.until).toISOString(), reason: ban.reason }, 'defender ban loaded');
        this.emit('ban', { ...ban }, 'store');
      }
    }
    const fileOffences = new Map(state.offences.filter((o) => o.lastBanAt + this.#config.offenceMemoryMs > now).map((o) => [o.ip, o]));
    for (const ip of this.#offences.keys()) {
      if (!this.#dirty.has(ip) && !fileOffences.has(ip)) this.#offences.delete(ip);
    }
    for (const o of fileOffences.values()) {
      if (!this.#dirty.has(o.ip)) this.#offences.set(o.ip, o);
    }
    this.#evictOver(this.#bans);
    this.#evictOver(this.#offences);
    if (this.#dirty.size > 0) this.#scheduleSave();
  }

  /** Drops expired bans, stale scores and forgotten offences. Runs every defender.pruneIntervalMs. */
  prune(): void {
    const now = this.#now();
    for (const [ip, ban] of this.#bans) {
      if (ban.until > now) continue;
      this.#bans.delete(ip);
      this.#log.info({ event: 'unban', ip, reason: 'expired' }, 'defender unban');
      this.emit('unban', { ip, reason: 'expired' });
    }
    const since = now - this.#config.windowMs;
    for (const [ip, hits] of this.#hits) {
      const kept = hits.filter((h) => h.at > since);
      if (kept.length === 0) this.#hits.delete(ip);
      else if (kept.length !== hits.length) this.#hits.set(ip, kept);
    }
    for (const [ip, o] of this.#offences) {
      if (o.lastBanAt + this.#config.offenceMemoryMs <= now) this.#offences.delete(ip);
    }
  }

  /** Writes pending changes now instead of after defender.saveDelayMs. Writes run one at a time. */
  flush(): Promise<void> {
    if (this.#saveTimer !== null) clearTimeout(this.#saveTimer);
    this.#saveTimer = null;
    const run = this.#io.then(() => this.#save());
    this.#io = run;
    return run;
  }

  async #save(): Promise<void> {
    if (this.#dirty.size === 0) return;
    // Only the addresses changed here are written, each as it is in memory now: what `ftpsd ban` or another node
    // wrote for other addresses meanwhile is left alone.
    const snapshot = new Map(this.#dirty);
    const now = this.#now();
    const changes = { bans: [] as BanRecord[], removedBans: [] as string[], offences: [] as OffenceRecord[], removedOffences: [] as string[] };
    for (const ip of snapshot.keys()) {
      const ban = this.#bans.get(ip);
      if (ban !== undefined && ban.until > now) changes.bans.push({ ...ban });
      else changes.removedBans.push(ip);
      const o = this.#offences.get(ip);
      if (o !== undefined && o.lastBanAt + this.#config.offenceMemoryMs > now) changes.offences.push({ ...o });
      else changes.removedOffences.push(ip);
    }
    try {
      await this.#store.save(changes, now);
    } catch (err) {
      // The changes stay pending and go with the next write (for a file: once it parses again).
      this.#log.error({ err, from: this.#store.describe }, 'defender bans not saved');
      return;
    }
    for (const [ip, n] of snapshot) if (this.#dirty.get(ip) === n) this.#dirty.delete(ip);
  }

  /** Writes pending changes and stops the timers. Idempotent. */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    this.#closed = true;
    clearInterval(this.#pruneTimer);
    if (this.#watchTimer !== null) clearInterval(this.#watchTimer);
    this.#watchTimer = null;
    this.#closing = this.flush();
    return this.#closing;
  }

  #impose(ip: string, now: number, ms: number, reason: string, details?: Record<string, unknown>): BanInfo {
    const offences = this.#previousOffences(ip, now) + 1;
    const ban: BanRecord = { ip, until: now + ms, reason, offences };
    this.#bans.delete(ip);
    this.#bans.set(ip, ban);
    this.#offences.delete(ip);
    this.#offences.set(ip, { ip, count: offences, lastBanAt: now });
    this.#evictOver(this.#bans);
    this.#evictOver(this.#offences);
    this.#markDirty(ip);
    // One stable line per ban; contrib/fail2ban/filter.d/ftpsd-ban.conf matches it. Client-supplied values stay
    // nested under details so they can never pose as top-level fields.
    this.#log.warn(
      { event: 'ban', ip, untilIso: new Date(ban.until).toISOString(), offences, reason, ...(details === undefined ? {} : { details }) },
      'defender ban',
    );
    const info = { ...ban };
    this.emit('ban', info, 'local');
    return info;
  }

  #previousOffences(ip: string, now: number): number {
    const o = this.#offences.get(ip);
    return o !== undefined && o.lastBanAt + this.#config.offenceMemoryMs > now ? o.count : 0;
  }

  /** Forgets the least recently touched entries past defender.maxTrackedIps (Map order is insertion order). */
  #evictOver(map: Map<string, unknown>): void {
    let excess = map.size - this.#config.maxTrackedIps;
    if (excess <= 0) return;
    this.#log.warn({ event: 'defender_full', maxTrackedIps: this.#config.maxTrackedIps, dropped: excess }, 'defender table full');
    for (const ip of map.keys()) {
      if (excess-- <= 0) break;
      map.delete(ip);
      // The store still lists it; dirty makes the next write drop it instead of the next merge bringing it back.
      if (map !== this.#hits) this.#dirty.set(ip, ++this.#changes);
    }
  }

  #markDirty(ip: string): void {
    this.#dirty.set(ip, ++this.#changes);
    this.#scheduleSave();
  }

  #scheduleSave(): void {
    if (this.#closed || this.#saveTimer !== null) return;
    if (this.#config.saveDelayMs === 0) {
      void this.flush();
      return;
    }
    this.#saveTimer = setTimeout(() => void this.flush(), this.#config.saveDelayMs);
    this.#saveTimer.unref();
  }
}
