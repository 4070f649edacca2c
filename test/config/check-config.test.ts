import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { runProcess } from '../helpers/clients.js';

// `ftpsd check-config` as an operator runs it: exit code and message name the key. Runs the built binary
// (scripts/test.sh builds dist/ first; alone: npx tsc -p tsconfig.json).

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'ftpsd.js');

describe('ftpsd check-config', () => {
  let dir: string;

  before(async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'dist/ is missing: build with npx tsc -p tsconfig.json');
    dir = await mkdtemp(join(tmpdir(), 'ftpsd-check-'));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    runProcess(process.execPath, [BIN, ...args], { cwd: dir, env: { FTPSD_CONFIG: '', ...env }, timeoutMs: 15_000 });

  it('exits 2 and names the key of an invalid value', async () => {
    await writeFile(join(dir, 'bad.yaml'), 'pasv:\n  minPort: 50000\n  maxPort: 99999\n');
    const r = await run(['check-config', '--config', 'bad.yaml']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /pasv\.maxPort/);
    assert.equal(r.stdout, '');
  });

  it('exits 2 and names a misspelt key', async () => {
    await writeFile(join(dir, 'typo.yaml'), 'tls:\n  requireForLogn: false\n');
    const r = await run(['check-config', '--config', 'typo.yaml']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown key tls\.requireForLogn/);
  });

  it('exits 2 and names the variable of a bad environment override', async () => {
    await writeFile(join(dir, 'good.yaml'), 'listen:\n  port: 2121\n');
    const r = await run(['check-config', '--config', 'good.yaml'], { FTPSD_LISTEN_PORT: 'twenty-one' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /listen\.port \(from FTPSD_LISTEN_PORT\)/);
  });

  it('exits 0 on a valid file and prints the effective settings, overrides included', async () => {
    await writeFile(join(dir, 'ok.yaml'), 'listen:\n  port: 2121\n');
    const r = await run(['check-config', '--config', 'ok.yaml'], { FTPSD_PASV_EXTERNAL_ADDRESS: '203.0.113.7' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ok\.yaml is valid/);
    const json = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { listen: { port: number }; pasv: { externalAddress: string } };
    assert.equal(json.listen.port, 2121);
    assert.equal(json.pasv.externalAddress, '203.0.113.7');
  });

  it('exits 2 when the named file does not exist', async () => {
    const r = await run(['check-config', '--config', 'nope.yaml']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /nope\.yaml does not exist/);
  });
});
