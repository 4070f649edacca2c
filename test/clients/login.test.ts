import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from 'basic-ftp';
import { runCurl, runPython, PY_REUSE_FTP_TLS } from '../helpers/clients.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// Login with the clients people actually use: Python's ftplib, curl and basic-ftp, each over explicit FTPS.

const USER = 'alice';
const PASSWORD = 'alice-client-pw';

describe('real clients log in', () => {
  let srv: TestServer;

  before(async () => {
    srv = await startTestServer({ users: [{ name: USER, password: PASSWORD }], config: { defender: { enabled: false } } });
    await writeFile(join(srv.home(USER), 'hello.txt'), 'hello\n');
  });

  after(async () => {
    await srv?.close();
  });

  it('Python ftplib FTP_TLS: login, pwd, quit', async () => {
    const code = `${PY_REUSE_FTP_TLS}
ftp = ftps_login(${srv.port}, ${JSON.stringify(USER)}, ${JSON.stringify(PASSWORD)})
print('PWD', ftp.pwd())
print('QUIT', ftp.quit())
try:
    ftps_login(${srv.port}, ${JSON.stringify(USER)}, 'wrong')
except ftplib.error_perm as e:
    print('WRONG', e)
`;
    const r = await runPython(code);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^PWD \/$/m);
    assert.match(r.stdout, /^QUIT 221/m);
    assert.match(r.stdout, /^WRONG 530/m);
  });

  it('curl --ssl-reqd lists the home directory', async () => {
    const r = await runCurl(['--ssl-reqd', '-k', '-u', `${USER}:${PASSWORD}`, `ftp://127.0.0.1:${srv.port}/`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /hello\.txt/);
    const bad = await runCurl(['--ssl-reqd', '-k', '-u', `${USER}:wrong`, `ftp://127.0.0.1:${srv.port}/`]);
    assert.equal(bad.code, 67, `curl reports a failed login (67): ${bad.stderr}`);
  });

  it('curl without TLS cannot log in', async () => {
    const r = await runCurl(['-u', `${USER}:${PASSWORD}`, `ftp://127.0.0.1:${srv.port}/`]);
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stdout, /hello\.txt/);
  });

  it('basic-ftp: access with TLS and pwd', async () => {
    const client = new Client(10_000);
    try {
      const welcome = await client.access({ host: '127.0.0.1', port: srv.port, user: USER, password: PASSWORD, secure: true, secureOptions: { rejectUnauthorized: false } });
      assert.equal(welcome.code, 220, "access resolves with the greeting once logged in");
      assert.equal(await client.pwd(), '/');
      const names = (await client.list()).map((f) => f.name);
      assert.deepEqual(names, ['hello.txt']);
    } finally {
      client.close();
    }
    const wrong = new Client(10_000);
    try {
      await assert.rejects(
        wrong.access({ host: '127.0.0.1', port: srv.port, user: USER, password: 'wrong', secure: true, secureOptions: { rejectUnauthorized: false } }),
        (err: Error & { code?: number }) => err.code === 530,
      );
    } finally {
      wrong.close();
    }
  });
});
