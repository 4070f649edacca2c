import net from 'node:net';
import { randomInt } from 'node:crypto';
import { FtpError } from '../errors.js';

/**
 * Hands out listening ports from pasv.minPort..pasv.maxPort. A port is taken by binding it, in random order, so
 * there is no probe-then-listen race with other processes and a hijacker cannot guess the next port.
 */
export class PassivePortPool {
  readonly #min: number;
  readonly #max: number;
  #inUse = 0;
  #exhausted = 0;

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

  /** Binds `server` to a free port of the range on `host`; throws FtpError 425 when every port is taken. */
  async listen(server: net.Server, host: string): Promise<number> {
    const start = randomInt(this.size);
    for (let i = 0; i < this.size; i++) {
      const port = this.#min + ((start + i) % this.size);
      if (await tryListen(server, host, port)) {
        this.#inUse++;
        server.once('close', () => this.#inUse--);
        return port;
      }
    }
    this.#exhausted++;
    throw new FtpError(425, `Can't open data connection: no free passive port in ${this.#min}-${this.#max}`, { reason: 'pasv_exhausted' });
  }
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
