import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Authorization } from 'acme-client';
import { AcmeError } from '../../src/acme/acme-error.js';
import { Dns01Hook, dnsRecordName, runDnsHook } from '../../src/acme/dns01-hook.js';
import { createLogger } from '../../src/log/logger.js';

const log = createLogger('silent');
const authz = (value: string) => ({ identifier: { type: 'dns', value } }) as unknown as Authorization;
const challenge = { type: 'dns-01', token: 't', url: 'https://ca.test/chall/1' };

describe('dns-01 hook', () => {
  let work: string;
  let recorder: string;
  let calls: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ftpsd-dns-hook-'));
    calls = join(work, 'calls');
    recorder = join(work, 'record.sh');
    await writeFile(recorder, `#!/bin/sh\nprintf '%s|%s|%s\\n' "$1" "$2" "$3" >> '${calls}'\n`, { mode: 0o755 });
  });
  after(() => rm(work, { recursive: true, force: true }));

  it('names the record _acme-challenge.<domain>. for a name and its wildcard alike', () => {
    assert.equal(dnsRecordName('ftps.test'), '_acme-challenge.ftps.test.');
    assert.equal(dnsRecordName('*.ftps.test'), '_acme-challenge.ftps.test.');
    assert.equal(dnsRecordName('ftps.test.'), '_acme-challenge.ftps.test.');
  });

  it('passes action, name and value as separate arguments, never through a shell', async () => {
    await rm(calls, { force: true });
    await runDnsHook(recorder, 'add', '_acme-challenge.ftps.test.', 'v; touch pwned $(id)', 5_000);
    assert.equal(await readFile(calls, 'utf8'), 'add|_acme-challenge.ftps.test.|v; touch pwned $(id)\n');
  });

  it('fails with the exit code and stderr of a failing hook', async () => {
    const hook = join(work, 'fail.sh');
    await writeFile(hook, "#!/bin/sh\necho 'API token rejected' >&2\nexit 4\n", { mode: 0o755 });
    await assert.rejects(runDnsHook(hook, 'add', 'n.', 'v', 5_000), (err: unknown) =>
      err instanceof AcmeError && err.reason === 'hook_failed' && /exited with code 4: API token rejected/.test(err.message));
    await assert.rejects(runDnsHook(join(work, 'missing.sh'), 'add', 'n.', 'v', 5_000), (err: unknown) =>
      err instanceof AcmeError && err.reason === 'hook_failed' && /cannot be run/.test(err.message));
  });

  it('kills a hook that runs past its timeout', async () => {
    const hook = join(work, 'slow.sh');
    await writeFile(hook, '#!/bin/sh\nexec sleep 30\n', { mode: 0o755 });
    const started = Date.now();
    await assert.rejects(runDnsHook(hook, 'add', 'n.', 'v', 200), (err: unknown) => err instanceof AcmeError && err.reason === 'hook_timeout');
    assert.ok(Date.now() - started < 5_000);
  });

  it('waits for propagation after adding, and removes leftover records when stopped', async () => {
    await rm(calls, { force: true });
    const hook = new Dns01Hook({ hook: recorder, timeoutMs: 5_000, propagationDelayMs: 300, log });
    await hook.start();
    const started = Date.now();
    await hook.create(authz('ftps.test'), challenge, 'value-1');
    assert.ok(Date.now() - started >= 300, 'propagation delay observed');
    await hook.stop(); // the order failed before its remove ran
    assert.deepEqual((await readFile(calls, 'utf8')).trim().split('\n'), [
      'add|_acme-challenge.ftps.test.|value-1',
      'remove|_acme-challenge.ftps.test.|value-1',
    ]);
  });

  it('refuses to start without a configured hook', async () => {
    const hook = new Dns01Hook({ hook: '', timeoutMs: 5_000, propagationDelayMs: 0, log });
    await assert.rejects(hook.start(), (err: unknown) => err instanceof AcmeError && err.reason === 'config');
  });
});
