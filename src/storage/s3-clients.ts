import { S3Client } from '@aws-sdk/client-s3';
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Config } from '../config/schema.js';
import { FtpError } from '../errors.js';

// One S3Client per configured location, shared by every session (it pools its connections). Settings are read from
// the running configuration each time, so a reload that changes a location's endpoint or keys gives new sessions a
// client built from the new values; the old one is closed.

type S3Settings = Config['storage']['s3'];

/** Sockets kept open to one S3 endpoint: each running transfer holds about partConcurrency of them. */
const MAX_SOCKETS = 64;

export class S3Clients {
  readonly #settings: () => S3Settings;
  readonly #onRequest: (op: string) => void;
  readonly #clients = new Map<string, { basis: readonly unknown[]; key: string; client: S3Client }>();

  /** `onRequest` is told of every HTTP request sent (each retry too), by operation, for ftpsd_s3_requests_total. */
  constructor(settings: () => S3Settings, onRequest: (op: string) => void = () => undefined) {
    this.#settings = settings;
    this.#onRequest = onRequest;
  }

  get settings(): S3Settings {
    return this.#settings();
  }

  /** The client for a location name; 550 when no such location is configured. */
  client(name: string): S3Client {
    const s = this.#settings();
    const known = this.#clients.get(name);
    // Asked for on every request. A reload replaces the locations array and sets the numbers in place, so the same
    // array and numbers mean the same client, without comparing the locations themselves.
    const basis = [s.locations, s.requestTimeoutMs, s.connectTimeoutMs, s.maxAttempts] as const;
    if (known !== undefined && known.basis.every((v, i) => v === basis[i])) return known.client;
    const loc = s.locations.find((l) => l.name === name);
    if (loc === undefined) throw new FtpError(550, 'Folder unavailable', { reason: 's3_unknown_location' });
    const key = JSON.stringify([loc, s.requestTimeoutMs, s.connectTimeoutMs, s.maxAttempts]);
    if (known?.key === key) {
      known.basis = basis;
      return known.client;
    }
    known?.client.destroy();
    // The SDK warns once per process that its releases after early January 2027 need Node 22. The version is pinned
    // in package.json for as long as the server supports Node 20, so the warning says nothing an operator can act on.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const agent = { keepAlive: true, maxSockets: MAX_SOCKETS };
    const client = new S3Client({
      ...(loc.endpoint === '' ? {} : { endpoint: loc.endpoint }),
      region: loc.region,
      credentials: { accessKeyId: loc.accessKeyId, secretAccessKey: loc.secretAccessKey },
      forcePathStyle: loc.forcePathStyle,
      maxAttempts: s.maxAttempts,
      // Stores other than AWS (RGW, MinIO) differ in the newer flexible checksums; the SHA-256 kept per object is ours.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { requestTimeout: s.requestTimeoutMs, connectionTimeout: s.connectTimeoutMs, httpAgent: new Agent(agent), httpsAgent: new HttpsAgent(agent) },
    });
    // In the deserialize step, which runs once per attempt inside the retry loop: each HTTP request is counted.
    const onRequest = this.#onRequest;
    client.middlewareStack.add(
      (next, context) => (args) => {
        onRequest(context.commandName?.replace(/Command$/, '') ?? 'unknown');
        return next(args);
      },
      { step: 'deserialize', name: 'ftpsdRequestCounter' },
    );
    this.#clients.set(name, { basis, key, client });
    return client;
  }

  close(): void {
    for (const { client } of this.#clients.values()) client.destroy();
    this.#clients.clear();
  }
}
