import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { runProcess } from '../helpers/clients.js';
import { BIN, ROOT } from '../ops/serve-process.js';
import { startAdminServer } from './admin-helpers.js';

// `ftpsd admin reset`: the way back in from the server's shell when the admin password is lost.

describe('ftpsd admin', () => {
  let dir: string;
  let configFile: string;
  const cli = (args: string[]) => runProcess(process.execPath, [BIN, 'admin', ...args, '--config', configFile], { cwd: dir });

  before(async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'dist/ is missing: build with npx tsc -p tsconfig.json');
    dir = await mkdtemp(join(tmpdir(), 'ftpsd-admin-cli-'));
    configFile = join(dir, 'ftpsd.yaml');
    await writeFile(configFile, stringify({ store: { path: join(dir, 'ftpsd.db') }, users: { file: join(dir, 'users.yaml') } }));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('creates or resets an account with a one-time password that logs in and must be changed', async () => {
    const created = await cli(['reset', 'rescue', '--role', 'operator']);
    assert.equal(created.code, 0, created.stderr);
    const first = /shown only now:\n(\S+)/.exec(created.stdout)?.[1];
    assert.ok(first, created.stdout);
    const reset = await cli(['reset', 'rescue']);
    const password = /shown only now:\n(\S+)/.exec(reset.stdout)?.[1];
    assert.ok(password && password !== first, reset.stdout);
    const list = await cli(['list']);
    assert.match(list.stdout, /^rescue\toperator\tenabled, one-time password\tlast login never$/m);
    assert.notEqual((await cli(['reset', 'bad name'])).code, 0);

    const s = await startAdminServer({ config: { store: { path: join(dir, 'ftpsd.db') } } });
    try {
      assert.equal((await s.login('rescue', first)).status, 401, 'the earlier password no longer works');
      const login = await s.login('rescue', password);
      assert.equal(login.status, 200, login.text);
      assert.equal(login.json.account.role, 'operator');
      assert.equal(login.json.account.mustChangePassword, true);
      const audit = await s.request('GET', '/api/v1/audit/records?event=store_change', { token: (await s.account('aud', 'auditor')).token });
      assert.deepEqual(audit.json.records.filter((r: any) => r.kind === 'admin').map((r: any) => r.action).sort(), ['create', 'password_reset']);
    } finally {
      await s.close();
    }
  });
});
