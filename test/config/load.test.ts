import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { defaultConfig } from '../../src/config/schema.js';

// Loading the configuration: every error names the key an operator has to fix; FTPSD_* variables override the file.

describe('loadConfig', () => {
  let dir: string;
  let n = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ftpsd-config-'));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function file(yaml: string): Promise<string> {
    const p = join(dir, `c${n++}.yaml`);
    await writeFile(p, yaml);
    return p;
  }

  /** Loads and returns the ConfigError's message (fails when loading succeeds). */
  async function errorOf(yaml: string, env: NodeJS.ProcessEnv = {}): Promise<{ message: string; problems: readonly string[] }> {
    const p = await file(yaml);
    try {
      loadConfig(p, env, dir);
    } catch (err) {
      assert.ok(err instanceof ConfigError, `a ConfigError, not ${String(err)}`);
      return { message: err.message, problems: err.problems };
    }
    assert.fail(`loaded without error: ${yaml}`);
  }

  it('loads a valid file over the defaults and resolves it against the working directory', async () => {
    const p = await file('listen:\n  port: 2200\npasv:\n  minPort: 41000\n  maxPort: 41010\n');
    const { config, file: used, baseDir } = loadConfig(p, {}, dir);
    assert.equal(config.listen.port, 2200);
    assert.equal(config.pasv.minPort, 41000);
    assert.equal(config.listen.host, defaultConfig().listen.host, 'defaults fill the rest');
    assert.equal(used, p);
    assert.equal(baseDir, dir);
  });

  it('runs on the defaults without a file, and an empty file is the defaults', async () => {
    assert.deepEqual(loadConfig(undefined, {}, dir).config, defaultConfig());
    assert.deepEqual(loadConfig(await file(''), {}, dir).config, defaultConfig());
  });

  it('names the key of an out-of-range value', async () => {
    const { problems } = await errorOf('pasv:\n  maxPort: 70000\n');
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^pasv\.maxPort: /);
  });

  it('names the key of a value of the wrong type', async () => {
    const { message } = await errorOf('listen:\n  port: "abc"\n');
    assert.match(message, /listen\.port: .*number/);
  });

  it('reports a misspelt key as unknown, with its full path', async () => {
    const { problems } = await errorOf('pasv:\n  minport: 41000\n');
    assert.deepEqual(problems, ['unknown key pasv.minport']);
    const top = await errorOf('listn:\n  port: 21\n');
    assert.deepEqual(top.problems, ['unknown key listn']);
  });

  it('refuses pasv.minPort above pasv.maxPort', async () => {
    const { problems } = await errorOf('pasv:\n  minPort: 60000\n  maxPort: 50000\n');
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^pasv\.maxPort: .*pasv\.minPort/);
  });

  it('reports every problem at once', async () => {
    const { problems } = await errorOf('listen:\n  port: -1\ntls:\n  minVersion: SSLv3\nlimits:\n  loginTimeoutMs: 0\n');
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('listen.port: ')));
    assert.ok(problems.some((p) => p.startsWith('tls.minVersion: ')));
    assert.ok(problems.some((p) => p.startsWith('limits.loginTimeoutMs: ')));
  });

  it('reports a YAML syntax error with the file and the line', async () => {
    const { message } = await errorOf('listen:\n  port: [2121\n  host: x\n');
    assert.match(message, /c\d+\.yaml is not valid YAML/);
    assert.match(message, /line \d+/);
    const notMapping = await errorOf('- a\n- b\n');
    assert.match(notMapping.message, /mapping/);
  });

  it('refuses an explicitly named file that does not exist', () => {
    assert.throws(() => loadConfig(join(dir, 'missing.yaml'), {}, dir), (err: Error) => err instanceof ConfigError && /missing\.yaml does not exist/.test(err.message));
  });

  describe('FTPSD_* environment overrides', () => {
    it('sets nested keys with their types, over the file', async () => {
      const p = await file('listen:\n  port: 2200\ntls:\n  requireForLogin: true\n');
      const { config } = loadConfig(p, {
        FTPSD_PASV_EXTERNAL_ADDRESS: '203.0.113.7',
        FTPSD_LISTEN_PORT: '2222',
        FTPSD_TLS_REQUIRE_FOR_LOGIN: 'false',
        FTPSD_PASV_MINPORT: '41000',
        FTPSD_PASV_MAX_PORT: '41100',
        FTPSD_CONFIG: '/ignored.yaml',
        FTPSD_NOT_A_SETTING: 'x',
        OTHER_LISTEN_PORT: '1',
      }, dir);
      assert.equal(config.pasv.externalAddress, '203.0.113.7');
      assert.equal(config.listen.port, 2222);
      assert.equal(config.tls.requireForLogin, false);
      assert.equal(config.pasv.minPort, 41000);
      assert.equal(config.pasv.maxPort, 41100);
    });

    it('applies without a file', () => {
      const { config } = loadConfig(undefined, { FTPSD_LIMITS_MAX_SESSIONS_PER_IP: '7' }, dir);
      assert.equal(config.limits.maxSessionsPerIp, 7);
    });

    it('names the key and the variable of a bad value', async () => {
      const { problems } = await errorOf('', { FTPSD_LISTEN_PORT: 'abc' });
      assert.equal(problems.length, 1);
      assert.match(problems[0]!, /^listen\.port \(from FTPSD_LISTEN_PORT\): .*number/);
      const ip = await errorOf('', { FTPSD_PASV_EXTERNAL_ADDRESS: 'nat.example.com' });
      assert.match(ip.problems[0]!, /^pasv\.externalAddress \(from FTPSD_PASV_EXTERNAL_ADDRESS\): /);
      const bool = await errorOf('', { FTPSD_TLS_REQUIRE_FOR_LOGIN: 'nope' });
      assert.match(bool.problems[0]!, /^tls\.requireForLogin \(from FTPSD_TLS_REQUIRE_FOR_LOGIN\): .*boolean/);
    });
  });
});
