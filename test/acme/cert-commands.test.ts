import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Command, CommanderError } from 'commander';
import { AcmeStore } from '../../src/acme/acme-store.js';
import { registerCertCommands } from '../../src/cli/cert-commands.js';
import { type Config, type ConfigInput, configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/log/logger.js';
import { type Pebble, acmeTestSettings, freePort, logCapture, startPebble } from '../helpers/pebble.js';

interface RunResult {
  code: number;
  out: string;
  err: string;
}

describe('ftpsd cert status / cert renew', () => {
  let work: string;
  let pebble: Pebble;
  const configs = new Map<string, Config>();

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ftpsd-cert-cli-'));
    pebble = await startPebble();
  });
  after(async () => {
    await pebble?.stop();
    await rm(work, { recursive: true, force: true });
  });

  /** Runs one command line the way bin/ftpsd would, with a config registered under `name`. */
  async function run(args: string[]): Promise<RunResult> {
    let out = '';
    let err = '';
    const program = new Command('ftpsd').exitOverride().configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (err += s) });
    registerCertCommands(program, {
      loadConfig: (file) => {
        const config = file === undefined ? undefined : configs.get(file);
        if (config === undefined) throw new Error(`config file ${file ?? '(none)'} does not exist`);
        return config;
      },
      log: createLogger('debug', logCapture().stream),
    });
    try {
      await program.parseAsync(args, { from: 'user' });
      return { code: 0, out, err };
    } catch (e) {
      if (e instanceof CommanderError) return { code: e.exitCode, out, err };
      throw e;
    }
  }

  function register(name: string, input: ConfigInput): void {
    configs.set(name, configSchema.parse(input));
  }

  function makeCert(dir: string, cn: string, days: number): { key: string; cert: string } {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${cn}.key`, '-out', `${cn}.crt`,
      '-days', String(days), '-subj', `/CN=${cn}`, '-addext', `subjectAltName=DNS:${cn}`], { cwd: dir, stdio: 'ignore' });
    return { key: join(dir, `${cn}.key`), cert: join(dir, `${cn}.crt`) };
  }

  it('describes tls.certFile when one is configured', async () => {
    const { key, cert } = makeCert(work, 'files.ftps.test', 30);
    register('file', { tls: { certFile: cert, keyFile: key } });
    const r = await run(['cert', 'status', '--config', 'file']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^source: +file /m);
    assert.match(r.out, /^subject: +CN=files\.ftps\.test$/m);
    assert.match(r.out, /^names: +files\.ftps\.test$/m);
    assert.match(r.out, /^serial: +[0-9A-F]+$/m);
    assert.match(r.out, /^not after: +\S+ \(29 days left\)$/m);
  });

  it('falls back to the self-signed certificate and says when no ACME certificate is stored yet', async () => {
    const selfSignedDir = join(work, 'self');
    await mkdir(selfSignedDir);
    makeCert(selfSignedDir, 'self-signed', 365);
    register('self', { tls: { selfSignedDir }, acme: { ...acmeTestSettings(pebble, join(work, 'empty-acme')) } });
    const r = await run(['cert', 'status', '--config', 'self']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^source: +self-signed /m);
    assert.match(r.out, /^note: +no ACME certificate stored/m);
  });

  it('exits 1 when there is no certificate and 2 when the configuration cannot be loaded', async () => {
    register('none', { tls: { selfSignedDir: join(work, 'nothing-here') } });
    const none = await run(['cert', 'status', '--config', 'none']);
    assert.equal(none.code, 1);
    assert.match(none.err, /no certificate yet/);
    const missing = await run(['cert', 'status', '--config', 'missing.yaml']);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /missing\.yaml does not exist/);
  });

  it('renews into acme.dir, then reports "not due" without --force, and status shows the ACME certificate', async () => {
    const dir = join(work, 'acme');
    register('acme', { tls: { selfSignedDir: join(work, 'self') }, acme: acmeTestSettings(pebble, dir) });
    const renewed = await run(['cert', 'renew', '--config', 'acme']);
    assert.equal(renewed.code, 0, renewed.err);
    assert.match(renewed.out, /issued certificate [0-9A-F]+ for ftps\.test/);
    assert.match(renewed.out, /SIGHUP/);
    const stored = await new AcmeStore(dir).loadCertificate();
    assert.ok(stored !== null);
    assert.ok(renewed.out.includes(stored.leaf.serialNumber));
    assert.equal((await stat(join(dir, 'cert.key'))).mode & 0o777, 0o600);

    const notDue = await run(['cert', 'renew', '--config', 'acme']);
    assert.equal(notDue.code, 0, notDue.err);
    assert.match(notDue.out, /use --force/);

    const forced = await run(['cert', 'renew', '--force', '--config', 'acme']);
    assert.equal(forced.code, 0, forced.err);
    const again = await new AcmeStore(dir).loadCertificate();
    assert.notEqual(again?.leaf.serialNumber, stored.leaf.serialNumber);

    const status = await run(['cert', 'status', '--config', 'acme']);
    assert.equal(status.code, 0, status.err);
    assert.match(status.out, /^source: +acme /m);
    assert.ok(status.out.includes(`serial:     ${again?.leaf.serialNumber}`));
    assert.match(status.out, /^issuer: +CN=Pebble Intermediate CA/m);
    assert.equal(await readFile(join(dir, 'cert.pem'), 'utf8'), again?.certPem);
  });

  it('refuses to order while another live process holds the order lock, and takes over one whose process is gone', async () => {
    const dir = join(work, 'locked');
    await mkdir(dir, { recursive: true });
    register('locked', { tls: { selfSignedDir: join(work, 'self') }, acme: acmeTestSettings(pebble, dir) });
    // Another process "ordering": alive while the first attempt runs, then killed without cleaning up.
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      await writeFile(join(dir, 'order.lock'), JSON.stringify({ pid: other.pid, host: hostname(), since: new Date().toISOString() }) + '\n');
      const busy = await run(['cert', 'renew', '--force', '--config', 'locked']);
      assert.equal(busy.code, 1);
      assert.match(busy.err, new RegExp(`already running in process ${other.pid} on `));
      assert.equal(existsSync(join(dir, 'cert.pem')), false, 'nothing was ordered');
    } finally {
      other.kill('SIGKILL');
      await once(other, 'exit');
    }
    const renewed = await run(['cert', 'renew', '--force', '--config', 'locked']);
    assert.equal(renewed.code, 0, renewed.err);
    assert.ok((await new AcmeStore(dir).loadCertificate()) !== null);
    assert.equal(existsSync(join(dir, 'order.lock')), false, 'the lock is released after the order');
  });

  it('exits 2 when ACME is off and 1 with the cause when the CA cannot be reached', async () => {
    register('off', {});
    const off = await run(['cert', 'renew', '--config', 'off']);
    assert.equal(off.code, 2);
    assert.match(off.err, /acme\.enabled is false/);

    const closed = await freePort();
    register('down', { acme: { ...acmeTestSettings(pebble, join(work, 'down')), directoryUrl: `https://127.0.0.1:${closed}/dir` } });
    const down = await run(['cert', 'renew', '--config', 'down']);
    assert.equal(down.code, 1);
    assert.match(down.err, /certificate renewal failed \(ca_unreachable\): .*ECONNREFUSED/);
  });
});
