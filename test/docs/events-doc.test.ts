import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CURL_UPLOAD_TLS_ARGS, runCurl } from '../helpers/clients.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { rule, setHooks, webhook } from '../events/hooks.js';

// The two receivers docs/events.md shows, run as written (on a free loopback port instead of 8080): each verifies
// the signature of a real delivery and prints the event, and refuses a request whose signature does not match.

const doc = readFileSync(new URL('../../docs/events.md', import.meta.url), 'utf8');
const block = (lang: string, marker: string) => {
  const blocks = [...doc.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);
  const found = blocks.find((b) => b.includes(marker));
  assert.ok(found !== undefined, `docs/events.md has a ${lang} block with ${marker}`);
  return found;
};

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('the receivers in docs/events.md', () => {
  let t: TestServer | null = null;
  const children: ChildProcess[] = [];
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await t?.close();
  });

  for (const [lang, cmd] of [['js', 'node'], ['python', 'python3']] as const) {
    it(`the ${cmd} receiver verifies a real delivery and refuses a forged one`, async () => {
      const port = await freePort();
      const code = block(lang, lang === 'js' ? 'timingSafeEqual' : 'compare_digest')
        .replace('.listen(8080)', `.listen(${port}, '127.0.0.1')`)
        .replace('HTTPServer(("", 8080)', `HTTPServer(("127.0.0.1", ${port})`);
      const child = spawn(cmd, lang === 'js' ? ['--input-type=commonjs', '-e', code] : ['-u', '-c', code], { env: { ...process.env, FTPSD_WEBHOOK_SECRET: 'doc-secret' }, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let out = '';
      child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
      // Up when it answers (401 to an unsigned request: the refusal path).
      let forged = 0;
      for (let i = 0; i < 50 && forged === 0; i++) {
        forged = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: '{"event":"upload"}', headers: { 'ftpsd-timestamp': String(Math.floor(Date.now() / 1000)), 'ftpsd-signature': 'v1=00' } })
          .then((r) => r.status)
          .catch(() => 0);
        if (forged === 0) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(forged, 401, out);

      t ??= await startTestServer({ config: { events: { pollIntervalMs: 200 } } });
      await setHooks(t, [webhook(`doc-${cmd}`, `http://127.0.0.1:${port}/`, 'doc-secret')], [rule(`doc-${cmd}`, ['upload'], [`doc-${cmd}`], { paths: [`/${cmd}.txt`] })]);
      const src = join(t.dir, `${cmd}.txt`);
      await writeFile(src, `for the ${cmd} receiver\n`);
      const up = await runCurl(['--ssl-reqd', '-k', ...CURL_UPLOAD_TLS_ARGS, '-u', 'alice:alice-secret', '-T', src, `ftp://127.0.0.1:${t.port}/${cmd}.txt`]);
      assert.equal(up.code, 0, up.stderr);
      const sha = createHash('sha256').update(`for the ${cmd} receiver\n`).digest('hex');
      const deadline = Date.now() + 15_000;
      while (!out.includes(`upload /${cmd}.txt ${sha}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.ok(out.includes(`upload /${cmd}.txt ${sha}`), `the receiver printed the verified event: ${out}`);
    });
  }
});
