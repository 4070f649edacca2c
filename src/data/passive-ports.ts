import net from 'node:net';
import { randomInt } from 'node:crypto';
import { FtpError } from '../errors.js';

/** Who asks for a passive port, and how many listeners each of them may hold at once. */
export interface PassiveOwner {
  user: string;
  address: string;
  maxPerUser: number;
  maxPerAddress: number;
}

/** pasv.maxListenersPerUser/PerAddress: 0 means a quarter of the range, so four accounts cannot hold every port. */
export function listenerCap(configured: number, rangeSize: number): number {
  return configured > 0 ? configured : Math.max(1, Math.floor(rangeSize / 4));
}

/**
 * Hands out listening ports from pasv.minPort..pasv.maxPort. A port is taken by binding it, in random order, so
 * there is no probe-then-listen race with other processes and a hijacker cannot guess the next port. Listeners are
 * counted per user and per client address while they listen, so a few accounts cannot hold the whole range.
 */
export class PassivePortPool {
  readonly #min: number;
  readonly #max: number;
  #inUse = 0;
  #exhausted = 0;
  readonly #perUser = new Map<string, number>();
  readonly #perAddress = new Map<string, number>();

  constructor(minPort: number, maxPort: number) {
    this.#min = minPort;
    this.#max = maxPort;
  }

  get size(): number {
    return this.#max - this.#min + 1;
  }

  get inUse(): number {
    return this.#inUse;
  }

  /** How many times a PASV found no free port. */
  get exhaustedCount(): number {
    return this.#exhausted;
  }

  /**
   * Binds `server` to a free port of the range on `host`; throws FtpError 425 when the owner holds its share already
   * or every port is taken. The port counts against the owner until `server` closes.
   */
  async listen(server: net.Server, host: string, owner: PassiveOwner): Promise<number> {
    const byUser = this.#perUser.get(owner.user) ?? 0;
    if (byUser >= owner.maxPerUser) {
      throw new FtpError(425, `Can't open data connection: too many passive ports open for your user (limit ${owner.maxPerUser}); finish or abort a transfer first`, { reason: 'pasv_user_limit' });
    }
    const byAddress = this.#perAddress.get(owner.address) ?? 0;
    if (byAddress >= owner.maxPerAddress) {
      throw new FtpError(425, `Can't open data connection: too many passive ports open for your address (limit ${owner.maxPerAddress}); finish or abort a transfer first`, { reason: 'pasv_address_limit' });
    }
    // Counted before the first await, so concurrent PASVs of one owner cannot all pass the check.
    count(this.#perUser, owner.user, 1);
    count(this.#perAddress, owner.address, 1);
    const release = () => {
      count(this.#perUser, owner.user, -1);
      count(this.#perAddress, owner.address, -1);
    };
    const start = randomInt(this.size);
    for (let i = 0; i < this.size; i++) {
      const port = this.#min + ((start + i) % this.size);
      let bound: boolean;
      try {
        bound = await tryListen(server, host, port);
      } catch (err) {
        release();
        throw err;
      }
      if (bound) {
        this.#inUse++;
        server.once('close', () => {
          this.#inUse--;
          release();
        });
        return port;
      }
    }
    release();
    this.#exhausted++;
    throw new FtpError(425, `Can't open data connection: no free passive port in ${this.#min}-${this.#max}`, { reason: 'pasv_exhausted' });
  }
}

function count(map: Map<string, number>, key: string, delta: number): void {
  const n = (map.get(key) ?? 0) + delta;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}

function tryListen(server: net.Server, host: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(false);
      else reject(new FtpError(425, "Can't open data connection", { reason: 'pasv_listen_failed', cause: err }));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve(true);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ port, host, exclusive: true, backlog: 4 });
  });
}
