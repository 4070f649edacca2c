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
  readonly #clients = new Map<string, { key: string; client: S3Client }>();

  constructor(settings: () => S3Settings) {
    this.#settings = settings;
  }

  get settings(): S3Settings {
    return this.#settings();
  }

  /** The client for a location name; 550 when no such location is configured. */
  client(name: string): S3Client {
    const s = this.#settings();
    const loc = s.locations.find((l) => l.name === name);
    if (loc === undefined) throw new FtpError(550, 'Folder unavailable', { reason: 's3_unknown_location' });
    const key = JSON.stringify([loc, s.requestTimeoutMs, s.connectTimeoutMs, s.maxAttempts]);
    const known = this.#clients.get(name);
    if (known?.key === key) return known.client;
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
    this.#clients.set(name, { key, client });
    return client;
  }

  close(): void {
    for (const { client } of this.#clients.values()) client.destroy();
    this.#clients.clear();
  }
}
