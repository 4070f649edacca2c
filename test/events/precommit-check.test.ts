import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CURL_UPLOAD_TLS_ARGS, runCurl } from '../helpers/clients.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { command, rule, setHooks, webhook } from './hooks.js';
import { startReceiver, type Receiver } from './receiver.js';

// The pre-commit check with real curl uploads: a scanner command that finds the EICAR test string refuses the upload
// with its own reason in the reply, nothing ever appears at the target name, and the file waits in quarantine; a
// clean file passes and is committed. A webhook check refusing with 422, and one that does not answer in time.

const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';
// A scanner as an operator would wire one: reads the staged file, says what it found on stdout, exits 1 to refuse.
// It sleeps a little first, so the test can look at the target while the check runs.
const SCANNER = `
import sys, time, os
time.sleep(float(os.environ.get('SCAN_DELAY', '0')))
data = open(sys.argv[1], 'rb').read()
if b'EICAR-STANDARD-ANTIVIRUS-TEST-FILE' in data:
    print('virus found: Eicar-Test-Signature')
    sys.exit(1)
print('clean')
`;

describe('pre-commit check', () => {
  let t: TestServer;
  let rx: Receiver;
  let checkRx: Receiver;
  let quarantine: string;

  before(async () => {
    rx = await startReceiver({ secret: 's1' });
    checkRx = await startReceiver({ secret: 'check-secret' });
    t = await startTestServer({ config: { events: { pollIntervalMs: 200, retryMinMs: 200, quarantineDir: 'quarantine', checkTimeoutMs: 1_000 } } });
    quarantine = join(t.dir, 'quarantine');
    const scanner = join(t.dir, 'scan.py');
    await writeFile(scanner, SCANNER);
    await setHooks(
      t,
      [command('scan', ['python3', scanner, '{file}'], { env: { SCAN_DELAY: '1.5' }, timeoutMs: 10_000 }), webhook('schema', checkRx.url, 'check-secret'), webhook('notify', rx.url, 's1')],
      [
        rule('av', ['upload_check'], ['scan'], { paths: ['/in/**'] }),
        rule('csv-schema', ['upload_check'], ['schema'], { paths: ['/csv/**'] }),
        rule('notify', ['upload', 'upload_refused'], ['notify']),
      ],
    );
  });
  after(async () => {
    await t?.close();
    await rx?.close();
    await checkRx?.close();
  });

  const curlUpload = (file: string, target: string) => runCurl(['-v', '--ssl-reqd', '-k', ...CURL_UPLOAD_TLS_ARGS, '-u', 'alice:alice-secret', '--ftp-create-dirs', '-T', file, `ftp://127.0.0.1:${t.port}/${target}`]);

  it('a refused curl upload: the reason in the reply, nothing at the target, the file in quarantine, audited and published', async () => {
    const bad = join(t.dir, 'eicar.txt');
    await writeFile(bad, `${EICAR}\n`);
    const upload = curlUpload(bad, 'in/report.txt');
    // While the scanner runs the complete bytes exist, but only under a hidden name.
    await waitFor(async () => (await readdir(join(t.home('alice'), 'in')).catch(() => [])).some((n) => n.startsWith('.ftpsd-upload-')), 'the staged upload');
    assert.equal(existsSync(join(t.home('alice'), 'in', 'report.txt')), false, 'nothing at the target during the check');
    const r = await upload;
    assert.notEqual(r.code, 0, 'curl reports the upload failed');
    assert.match(r.stderr, /^< 550 Upload refused: virus found: Eicar-Test-Signature\r?$/m, 'the scanner\'s reason is in the reply');
    assert.deepEqual(await readdir(join(t.home('alice'), 'in')), [], 'no file, no temporary, no partial left');
    const q = await readdir(quarantine);
    const file = q.find((n) => n.endsWith('-report.txt'))!;
    assert.ok(file !== undefined, `quarantined: ${q.join(', ')}`);
    assert.equal(await readFile(join(quarantine, file), 'utf8'), `${EICAR}\n`);
    const note = JSON.parse(await readFile(join(quarantine, `${file}.json`), 'utf8')) as Record<string, unknown>;
    assert.equal(note.reason, 'virus found: Eicar-Test-Signature');
    assert.equal(note.path, '/in/report.txt');
    const audit = t.logs().find((l) => l.audit === true && l.event === 'upload_refused')!;
    assert.equal(audit.reason, 'virus found: Eicar-Test-Signature');
    assert.equal(audit.quarantine, join(quarantine, file));
    const [ev] = await rx.waitFor(1, 10_000, (x) => x.event.event === 'upload_refused');
    assert.equal(ev!.event.result, 'refused');
    assert.equal(ev!.event.code, 550);
    assert.equal(ev!.event.reason, 'virus found: Eicar-Test-Signature');
    assert.equal(ev!.event.id, file.slice(0, file.length - '-report.txt'.length), 'the quarantined file is named by the event id');
  });

  it('a clean curl upload passes the check and is committed', async () => {
    const good = join(t.dir, 'good.txt');
    await writeFile(good, 'quarterly figures\n');
    const started = Date.now();
    const r = await curlUpload(good, 'in/figures.txt');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Date.now() - started >= 1_500, 'the 226 waited for the check');
    assert.equal(await readFile(join(t.home('alice'), 'in', 'figures.txt'), 'utf8'), 'quarterly figures\n');
    const [ev] = await rx.waitFor(1, 10_000, (x) => x.event.event === 'upload' && x.event.path === '/in/figures.txt');
    assert.equal(ev!.event.result, 'ok');
  });

  it('a webhook check refusing with 422 gives its reason; one that does not answer in time refuses with 451', async () => {
    const csv = join(t.dir, 'orders.csv');
    await writeFile(csv, 'no header here\n1,2,3\n');
    checkRx.respond = (x) => (x.body.toString().startsWith('id,') ? { status: 204 } : { status: 422, body: 'schema invalid: missing header row\n' });
    let r = await curlUpload(csv, 'csv/orders.csv');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^< 550 Upload refused: schema invalid: missing header row\r?$/m);
    const seen = checkRx.received.at(-1)!;
    assert.ok(seen.signatureValid, 'the check request is signed and its body matches the sha256 in the event');
    assert.equal(seen.event.event, 'upload_check');
    assert.equal(seen.body.toString(), 'no header here\n1,2,3\n', 'the check got the complete uploaded bytes');
    assert.equal(existsSync(join(t.home('alice'), 'csv', 'orders.csv')), false);

    await writeFile(csv, 'id,qty\n1,2\n');
    r = await curlUpload(csv, 'csv/orders.csv');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(t.home('alice'), 'csv', 'orders.csv')));

    checkRx.respond = () => ({ status: 204, delayMs: 3_000 });
    r = await curlUpload(csv, 'csv/late.csv');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^< 451 Upload refused: the upload check did not answer/m);
    assert.equal(existsSync(join(t.home('alice'), 'csv', 'late.csv')), false, 'a check that did not answer refuses (events.checkTimeoutResult)');
  });
});

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
