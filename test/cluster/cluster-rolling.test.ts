import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { CLIENT_IP, s3ClusterStorage, startCluster, type ClusterTopology } from '../helpers/cluster.js';
import { CURL_UPLOAD_TLS_ARGS, runCurl, type RunResult } from '../helpers/clients.js';
import { startS3, type TestS3 } from '../helpers/s3.js';

// The topology of cluster-balanced.test.ts (three nodes behind HAProxy, passive ranges forwarded, the partners' files
// in a bucket of Ceph radosgw), restarted node by node while three curl clients keep uploading through the balancer:
// what a partner was told is stored (226) is in the bucket, whole, and nothing else is.

const PARTNERS = `
users:
  acme:
    home: '{root}/acme'
    permissions: { /: [list, download, upload, overwrite, delete] }
`;
const PASSWORD = 'acme-Secret-1';
const PREFIX = 'partners';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('a rolling restart of three nodes with files on S3 (Ceph radosgw)', () => {
  let s3: TestS3;
  let bucket: string;
  let c: ClusterTopology;
  before(async () => {
    s3 = await startS3();
    bucket = await s3.newBucket();
    c = await startCluster({ layout: 'balanced', partners: PARTNERS, passwords: { acme: PASSWORD }, storage: s3ClusterStorage(s3.location('rgw'), bucket, PREFIX) });
  }, { timeout: 240_000 });
  after(async () => {
    await c?.close();
    await s3?.stop();
  });

  const key = (name: string) => `${PREFIX}/acme/${name}`;
  const object = (name: string): Promise<Buffer> => s3.getObject(bucket, key(name));
  /** Every object name under the user's prefix (pages of 1000 keys). */
  const names = async (): Promise<string[]> => {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: key(''), ContinuationToken: token }));
      out.push(...(page.Contents ?? []).map((o) => o.Key!.slice(key('').length)));
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return out;
  };
  const curl = (args: string[], timeoutMs: number): Promise<RunResult> => runCurl(['--ssl-reqd', '-k', '--interface', CLIENT_IP, '-u', `acme:${PASSWORD}`, ...args], { timeoutMs });
  const base = () => `ftp://127.0.0.1:${c.port}`;

  /** Stops (SIGTERM) and starts every node in turn. */
  const restartEach = async (t: { diagnostic(m: string): void }) => {
    for (const n of c.nodes) {
      await new Promise((r) => setTimeout(r, 400));
      // SIGTERM: the node stops taking sessions, lets running transfers finish, and exits; HAProxy's health check
      // takes it out of rotation meanwhile and puts it back once it listens again.
      const stopping = Date.now();
      await n.stop();
      const starting = Date.now();
      await n.start();
      t.diagnostic(`${n.id}: stopped in ${starting - stopping} ms, listening again ${Date.now() - starting} ms later`);
    }
    await new Promise((r) => setTimeout(r, 400));
  };

  test('a rolling restart of every node while clients upload loses no committed file', async (t) => {
    const payloads = new Map<string, Buffer>();
    let stop = false;
    const committed: string[] = [];
    let failed = 0;
    const worker = async (w: number) => {
      for (let i = 0; !stop && i < 200; i++) {
        const name = `roll-${w}-${i}.bin`;
        const body = randomBytes(50_000 + Math.floor(Math.random() * 150_000));
        const file = join(c.dir, name);
        await writeFile(file, body);
        payloads.set(name, body);
        const r = await curl([...CURL_UPLOAD_TLS_ARGS, '-T', file, `${base()}/${name}`], 15_000);
        if (r.code === 0) committed.push(name);
        else failed++;
      }
    };
    const workers = [0, 1, 2].map((w) => worker(w));
    try {
      await restartEach(t);
    } finally {
      stop = true;
      await Promise.all(workers);
    }
    t.diagnostic(`${committed.length} uploads committed, ${failed} failed`);
    assert.ok(committed.length >= 10, `enough uploads went through (${committed.length} committed, ${failed} failed)`);
    const stored = new Set(await names());
    for (const name of committed) {
      assert.ok(stored.has(name), `${name} was reported stored (226) and is in the bucket`);
      assert.equal(sha(await object(name)), sha(payloads.get(name)!), `${name} is whole`);
    }
    // Nothing half-written under a final name either: every roll-* object present was a committed one.
    for (const name of stored) if (name.startsWith('roll-')) assert.ok(committed.includes(name), `${name} is present but was not reported stored`);
  });
});
