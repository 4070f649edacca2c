import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { CURL_UPLOAD_TLS_ARGS, PY_REUSE_FTP_TLS, runCurl, runProcess, runPython, type RunResult } from '../helpers/clients.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startReceiver, type Receiver } from './receiver.js';

// Event rules kept as code: `ftpsd apply` puts the `events:` section of a partners file into the store (the running
// server picks it up), `ftpsd export` writes it back. A command action gets its variables, never through a shell; a
// webhook that keeps failing becomes a dead letter that `ftpsd events list --failed` shows and `ftpsd events retry`
// sends again.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'ftpsd.js');
// Records what it was given: its arguments, the FTPSD_* variables, the payload on standard input.
const RECORDER = `
import json, os, sys
out = os.environ['OUT_DIR'] + '/' + os.environ['FTPSD_EVENT_ID'] + '.json'
json.dump({'argv': sys.argv[1:], 'env': {k: v for k, v in os.environ.items() if k.startswith('FTPSD_') or k == 'OUT_DIR'}, 'stdin': sys.stdin.read()}, open(out, 'w'))
print('recorded', sys.argv[1])
`;

describe('events in the partners file, command actions and dead letters', () => {
  let t: TestServer;
  let rx: Receiver;
  let configFile: string;
  const cli = (args: string[]): Promise<RunResult> => runProcess(process.execPath, [BIN, ...args, '--config', configFile], { cwd: t.dir, env: { FTPSD_CONFIG: '' }, timeoutMs: 20_000 });

  before(async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'dist/ is missing: build with npx tsc -p tsconfig.json');
    rx = await startReceiver({ secret: 'erp-secret' });
    t = await startTestServer({ config: { events: { pollIntervalMs: 200, retryMinMs: 100, retryMaxMs: 200, maxAttempts: 2 } } });
    configFile = join(t.dir, 'ftpsd.yaml');
    await writeFile(configFile, stringify({ store: { path: join(t.storeDir, 'ftpsd.db') }, users: { file: join(t.dir, 'users.yaml') } }));
    await writeFile(join(t.dir, 'recorder.py'), RECORDER);
  });
  after(async () => {
    await t?.close();
    await rx?.close();
  });

  it('apply puts the events section into the store and the server uses it; export gives it back', async () => {
    const exported = await cli(['export']);
    assert.equal(exported.code, 0, exported.stderr);
    const doc = parse(exported.stdout) as Record<string, unknown>;
    doc.events = {
      actions: {
        erp: { description: 'ERP import', webhook: { url: rx.url, secret: 'erp-secret', headers: { 'x-tenant': 'acme' }, timeoutMs: 5000 } },
        recorder: { command: { argv: ['python3', join(t.dir, 'recorder.py'), '{event}', '{path}', '{user}', '{size}'], env: { OUT_DIR: t.dir } } },
      },
      rules: {
        'uploads-to-erp': { events: ['upload'], users: ['alice'], paths: ['/**'], results: ['ok'], actions: ['erp'] },
        'record-mkdir': { events: ['mkdir', 'upload'], paths: ['/cmd/**', '/cmd'], actions: ['recorder'] },
      },
    };
    const file = join(t.dir, 'partners.yaml');
    await writeFile(file, stringify(doc));
    const applied = await cli(['apply', '-f', file]);
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /\+ event_action erp/);
    assert.match(applied.stdout, /\+ event_rule uploads-to-erp/);
    const again = await cli(['apply', '-f', file]);
    assert.match(again.stdout, /no changes/);
    const back = parse((await cli(['export'])).stdout) as { events: unknown };
    assert.deepEqual(back.events, doc.events);
    // A typo is refused before anything changes.
    const bad = structuredClone(doc) as { events: { rules: Record<string, { actions: string[] }> } };
    bad.events.rules['uploads-to-erp']!.actions = ['erpp'];
    await writeFile(file, stringify(bad));
    const refused = await cli(['apply', '-f', file]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /events\.rules\.uploads-to-erp\.actions\.0: unknown action "erpp"/);

    await t.server.syncStore();
    const src = join(t.dir, 'up.txt');
    await writeFile(src, 'hello erp\n');
    const r = await runCurl(['--ssl-reqd', '-k', ...CURL_UPLOAD_TLS_ARGS, '-u', 'alice:alice-secret', '-T', src, `ftp://127.0.0.1:${t.port}/up.txt`]);
    assert.equal(r.code, 0, r.stderr);
    const [got] = await rx.waitFor(1);
    assert.ok(got!.signatureValid);
    assert.equal(got!.headers['x-tenant'], 'acme', 'configured headers are sent');
    assert.equal(got!.event.path, '/up.txt');
  });

  it('a command action sees its arguments, variables and payload, never through a shell', async () => {
    const tricky = "cmd/a b;touch PWNED $(id)";
    const py = await runPython(`${PY_REUSE_FTP_TLS}
ftp = ftps_login(${t.port}, 'alice', 'alice-secret')
ftp.mkd('cmd')
ftp.mkd(${JSON.stringify(tricky)})
ftp.quit()
`);
    assert.equal(py.code, 0, py.stderr);
    const records = await waitForRecords(t, 2);
    const rec = records.find((x) => x.argv[1] === `/${tricky}`)!;
    assert.ok(rec !== undefined, JSON.stringify(records.map((x) => x.argv)));
    assert.deepEqual(rec.argv, ['mkdir', `/${tricky}`, 'alice', ''], 'placeholders replaced, one argument each');
    assert.equal(existsSync(join(t.dir, 'PWNED')), false, 'nothing ran through a shell');
    assert.equal(rec.env.FTPSD_EVENT, 'mkdir');
    assert.equal(rec.env.FTPSD_PATH, `/${tricky}`);
    assert.equal(rec.env.FTPSD_USER, 'alice');
    assert.equal(rec.env.FTPSD_IP, '127.0.0.1');
    assert.equal(rec.env.FTPSD_V, '1');
    assert.equal(rec.env.OUT_DIR, t.dir, "the action's own variables");
    assert.ok(rec.env.FTPSD_EVENT_ID !== undefined && rec.env.FTPSD_SESSION !== '');
    const payload = JSON.parse(rec.stdin) as Record<string, unknown>;
    assert.equal(payload.id, rec.env.FTPSD_EVENT_ID);
    assert.deepEqual(JSON.parse(rec.env.FTPSD_PAYLOAD!), payload);
    assert.equal(Object.keys(rec.env).some((k) => k.startsWith('FTPSD_STORE')), false);
    // Its output goes to the log.
    const logged = t.logs().find((l) => l.event === 'event_command_output' && String(l.stdout).includes(`recorded mkdir`));
    assert.ok(logged !== undefined, 'command output in the log');
  });

  it('a webhook that keeps failing becomes a dead letter; events list --failed shows it, events retry sends it', async () => {
    rx.respond = () => ({ status: 500, body: 'erp is down' });
    const src = join(t.dir, 'up2.txt');
    await writeFile(src, 'second\n');
    const r = await runCurl(['--ssl-reqd', '-k', ...CURL_UPLOAD_TLS_ARGS, '-u', 'alice:alice-secret', '-T', src, `ftp://127.0.0.1:${t.port}/up2.txt`]);
    assert.equal(r.code, 0, r.stderr);
    let failed: RunResult;
    const deadline = Date.now() + 15_000;
    for (;;) {
      failed = await cli(['events', 'list', '--failed', '--json']);
      if (failed.stdout.trim() !== '' || Date.now() > deadline) break;
      await new Promise((res) => setTimeout(res, 300));
    }
    const rows = failed.stdout.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { id: number; eventId: string; state: string; attempts: number; lastError: string; action: string });
    assert.equal(rows.length, 1, failed.stdout + failed.stderr);
    assert.equal(rows[0]!.state, 'failed');
    assert.equal(rows[0]!.attempts, 2, 'events.maxAttempts');
    assert.match(rows[0]!.lastError, /HTTP 500: erp is down/);
    const table = await cli(['events', 'list', '--failed']);
    assert.match(table.stdout, /failed\t2\tupload\t/);

    rx.respond = () => ({ status: 200 });
    const retried = await cli(['events', 'retry', String(rows[0]!.id)]);
    assert.equal(retried.code, 0, retried.stderr);
    assert.match(retried.stdout, /queued 1 delivery again/);
    const arrived = await rx.waitFor(1, 10_000, (x) => x.event.id === rows[0]!.eventId && x.headers['ftpsd-event-id'] === rows[0]!.eventId);
    assert.equal(arrived[0]!.event.path, '/up2.txt');
    const none = await cli(['events', 'retry', String(rows[0]!.id)]);
    assert.equal(none.code, 1, 'nothing failed to retry any more');
    const show = await cli(['events', 'show', rows[0]!.eventId]);
    assert.equal((JSON.parse(show.stdout) as { sha256: string }).sha256.length, 64);
  });
});

async function waitForRecords(t: TestServer, n: number): Promise<Array<{ argv: string[]; env: Record<string, string>; stdin: string }>> {
  const { readdir } = await import('node:fs/promises');
  const deadline = Date.now() + 15_000;
  for (;;) {
    const names = (await readdir(t.dir)).filter((x) => /^[0-9a-f-]{36}\.json$/.test(x));
    if (names.length >= n) {
      try {
        return await Promise.all(names.map(async (x) => JSON.parse(await readFile(join(t.dir, x), 'utf8')) as { argv: string[]; env: Record<string, string>; stdin: string }));
      } catch {
        // a file still being written
      }
    }
    if (Date.now() > deadline) throw new Error(`${names.length} of ${n} command records`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
