import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FtpError } from '../../src/errors.js';
import { DigestPool, INLINE_DIGEST_MAX_BYTES } from '../../src/storage/digest-pool.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('DigestPool', () => {
  let dir: string;
  // A small read buffer, so one extend spans many reads in the worker.
  const pool = new DigestPool(2, 4096);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ftpsd-digest-'));
  });
  after(async () => {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('hashes a file as it is written, extend by extend, to the SHA-256 of the whole', async () => {
    const data = randomBytes(300_000);
    const file = await open(join(dir, 'growing'), 'w+');
    const job = pool.job(file.fd);
    for (let at = 0; at < data.length; at += 70_000) {
      const part = data.subarray(at, at + 70_000);
      await file.write(part, 0, part.length, at);
      job.extend(at + part.length);
    }
    assert.equal(await job.digest(), sha256(data));
    await job.drop();
    await file.close();
  });

  it('gives the SHA-256 of nothing for a job that never grew', async () => {
    const file = await open(join(dir, 'empty'), 'w+');
    const job = pool.job(file.fd);
    assert.equal(await job.digest(), sha256(Buffer.alloc(0)));
    await file.close();
  });

  it('fails the digest when the file holds fewer bytes than were reported written', async () => {
    const file = await open(join(dir, 'short'), 'w+');
    await file.write(Buffer.from('abc'), 0, 3, 0);
    const job = pool.job(file.fd);
    job.extend(10);
    await assert.rejects(job.digest(), /shorter/);
    await file.close();
  });

  it('lets go of the descriptor on drop, so the owner may close it', async () => {
    const file = await open(join(dir, 'dropped'), 'w+');
    await file.write(randomBytes(100_000), 0, 100_000, 0);
    const job = pool.job(file.fd);
    job.extend(100_000);
    await job.drop();
    await file.close();
    await assert.rejects(job.digest(), /finished/);
  });

  it('runs jobs side by side and keeps their bytes apart', async () => {
    const files = await Promise.all([0, 1, 2, 3].map((i) => open(join(dir, `many-${i}`), 'w+')));
    const datas = files.map(() => randomBytes(50_000));
    const jobs = await Promise.all(
      files.map(async (f, i) => {
        await f.write(datas[i]!, 0, datas[i]!.length, 0);
        const job = pool.job(f.fd);
        job.extend(datas[i]!.length);
        return job;
      }),
    );
    assert.deepEqual(await Promise.all(jobs.map((j) => j.digest())), datas.map(sha256));
    await Promise.all(files.map((f) => f.close()));
  });

  it('hashes files on either side of the inline limit (read back here, or by the worker) to the same SHA-256', async () => {
    for (const size of [1, INLINE_DIGEST_MAX_BYTES, INLINE_DIGEST_MAX_BYTES + 1]) {
      const data = randomBytes(size);
      const file = await open(join(dir, `edge-${size}`), 'w+');
      await file.write(data, 0, size, 0);
      const job = pool.job(file.fd);
      job.extend(size);
      assert.equal(await job.digest(), sha256(data), `${size} bytes`);
      await job.drop();
      await file.close();
    }
  });

  it('fails a small digest too when the file holds fewer bytes than reported, and drop still settles', async () => {
    const file = await open(join(dir, 'short-small'), 'w+');
    await file.write(Buffer.from('abc'), 0, 3, 0);
    const job = pool.job(file.fd);
    job.extend(100);
    await assert.rejects(job.digest(), /shorter/);
    await job.drop();
    await file.close();
  });

  it('refuses new jobs once closed, with 421', async () => {
    const closed = new DigestPool(1, 4096);
    await closed.close();
    assert.throws(() => closed.job(0), (e: unknown) => e instanceof FtpError && e.code === 421);
  });
});
