import { CreateBucketCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

// A real S3 server for the tests: radosgw of a throwaway single-node Ceph (scripts/start-ceph-rgw.sh). `npm test`
// starts one for the whole run (scripts/test.sh, named by FTPSD_TEST_S3_*): each test file then gets fresh buckets
// on it and its stop() leaves it running. A test file run alone starts its own Ceph (3-5 s) and stops it in `after`.

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../scripts/start-ceph-rgw.sh', import.meta.url));

export interface TestS3 {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** A fresh, empty bucket. */
  newBucket(): Promise<string>;
  /** A client of the store, to look at it from outside the server. */
  client: S3Client;
  /** The whole content of an object (rejects with the SDK's error when it is missing). */
  getObject(bucket: string, key: string): Promise<Buffer>;
  /** An entry for storage.s3.locations. */
  location(name: string): { name: string; endpoint: string; accessKeyId: string; secretAccessKey: string };
  stop(): Promise<void>;
}

// The server's S3 clients silence the SDK's Node 22 notice (the version is pinned); so do the tests' own.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

function engine(endpoint: string, accessKeyId: string, secretAccessKey: string, stopEngine: () => Promise<void>): TestS3 {
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    client,
    async newBucket() {
      const bucket = `ftpsd-${randomBytes(5).toString('hex')}`;
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      return bucket;
    },
    async getObject(bucket, key) {
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await out.Body!.transformToByteArray());
    },
    location: (name) => ({ name, endpoint, accessKeyId, secretAccessKey }),
    async stop() {
      client.destroy();
      await stopEngine();
    },
  };
}

export async function startS3(): Promise<TestS3> {
  const env = process.env;
  if (env.FTPSD_TEST_S3_ENDPOINT !== undefined && env.FTPSD_TEST_S3_ACCESS_KEY !== undefined && env.FTPSD_TEST_S3_SECRET_KEY !== undefined) {
    return engine(env.FTPSD_TEST_S3_ENDPOINT, env.FTPSD_TEST_S3_ACCESS_KEY, env.FTPSD_TEST_S3_SECRET_KEY, async () => undefined);
  }
  const dir = await mkdtemp(join(tmpdir(), 'ftpsd-ceph-'));
  // Ports of their own, away from the passive ranges (10000-19999) and the PostgreSQL helper's (20000-28999).
  const rgwPort = 30_000 + Math.floor(Math.random() * 4_000);
  const monPort = 34_000 + Math.floor(Math.random() * 4_000);
  let stdout: string;
  try {
    ({ stdout } = await run('bash', [SCRIPT, 'start', dir, String(rgwPort), String(monPort)], { timeout: 240_000 }));
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`Ceph RGW did not start: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`);
  }
  const vars = Object.fromEntries(stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  return engine(vars.FTPSD_TEST_S3_ENDPOINT!, vars.FTPSD_TEST_S3_ACCESS_KEY!, vars.FTPSD_TEST_S3_SECRET_KEY!, async () => {
    await run('bash', [SCRIPT, 'stop', dir], { timeout: 30_000 }).catch(() => undefined);
  });
}
