import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCurl, runPython } from '../helpers/clients.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// The partner guide's examples, run as written against a real server (only host, port, credentials and the
// certificate file are put in).

const guide = readFileSync(new URL('../../docs/partner-guide.md', import.meta.url), 'utf8');

function codeBlock(lang: string): string {
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(guide);
  assert.ok(m !== null, `the guide has a ${lang} block`);
  return m[1]!;
}

describe('partner guide examples', () => {
  let t: TestServer;
  let cert: string;
  const report = 'id;amount\n1;42\n';

  before(async () => {
    t = await startTestServer({ users: [{ name: 'partner-a', password: 'secret' }] });
    cert = join(t.dir, 'certs', 'self-signed.crt');
    await writeFile(join(t.dir, 'report.csv'), report);
  });
  after(async () => {
    await t.close();
  });

  test('the Python ftplib snippet uploads, lists and downloads, verifying the certificate', async () => {
    const code = codeBlock('python')
      .replace(/^HOST = .*$/m, 'HOST = "127.0.0.1"')
      .replace(/^PORT = .*$/m, `PORT = ${t.port}`)
      .replace(/^CAFILE = .*$/m, `CAFILE = ${JSON.stringify(cert)}`);
    const r = await runPython(code, { cwd: t.dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /report\.csv/);
    assert.equal(await readFile(join(t.home('partner-a'), 'report.csv'), 'utf8'), report);
    assert.equal(await readFile(join(t.dir, 'result.csv'), 'utf8'), report);
  });

  test('the curl commands work with --cacert', async () => {
    await writeFile(join(t.home('partner-a'), 'result.csv'), report);
    await mkdir(join(t.home('partner-a'), 'incoming'), { recursive: true });
    await mkdir(join(t.home('partner-a'), 'outgoing'), { recursive: true });
    await writeFile(join(t.home('partner-a'), 'outgoing', 'result.csv'), report);
    const commands = codeBlock('sh').split('\n').filter((l) => l.startsWith('curl '));
    assert.equal(commands.length, 3);
    for (const line of commands) {
      const args = line
        .replace(/^curl /, '')
        .replace('ftp://ftp.example.com:2121/', `ftp://127.0.0.1:${t.port}/`)
        .replace('--user partner-a', '--user partner-a:secret')
        .split(' ');
      const r = await runCurl([...args, '--cacert', cert], { cwd: t.dir });
      assert.equal(r.code, 0, `${line}: ${r.stderr}`);
    }
    assert.equal(await readFile(join(t.home('partner-a'), 'incoming', 'report.csv'), 'utf8'), report);
    assert.equal(await readFile(join(t.dir, 'result.csv'), 'utf8'), report);
  });
});
