import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PY_REUSE_FTP_TLS, runPython } from '../helpers/clients.js';
import { startTestServer, writeHomeFile, type TestServer } from '../helpers/server.js';

// Listings and small files interleaved on one session, as Python's ftplib makes them: the data is written as soon as
// the data connection's handshake ends, which is where a renewed TLS 1.3 session ticket could be overtaken by it.

const USER = 'alice';
const PASSWORD = 'alice-secret';

describe('Python ftplib: listings and small transfers interleaved on one session', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ config: { defender: { threshold: 10_000 } } });
    await writeHomeFile(t, USER, 'small.txt', 'hello\n');
  });
  after(() => t.close());

  for (const version of ['TLSv1_2', 'TLSv1_3'] as const) {
    test(`${version}: 25 rounds of NLST, MLSD, LIST, RETR and STOR, every one complete`, async () => {
      const code = `${PY_REUSE_FTP_TLS}
import io, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.${version}
ftp = ReusedSessionFTP_TLS(context=ctx, timeout=10)
ftp.connect('127.0.0.1', ${t.port}); ftp.auth(); ftp.login('${USER}', '${PASSWORD}'); ftp.prot_p()
ok = 0
for i in range(25):
    ok += 'small.txt' in ftp.nlst()
    ok += any(name == 'small.txt' for name, _ in ftp.mlsd())
    lines = []; ftp.retrlines('LIST', lines.append); ok += any(l.endswith('small.txt') for l in lines)
    buf = io.BytesIO(); ftp.retrbinary('RETR small.txt', buf.write); ok += buf.getvalue() == b'hello\\n'
    ftp.storbinary('STOR up-%d.txt' % i, io.BytesIO(b'x' * 4096)); ok += 1
ftp.quit()
print(ok)
`;
      const r = await runPython(code, { timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), '125');
      assert.equal(t.logs().filter((l) => l.event === 'data_connection_refused').length, 0);
    });
  }
});
