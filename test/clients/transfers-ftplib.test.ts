import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PY_REUSE_FTP_TLS, runPython } from '../helpers/clients.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// Python's ftplib. Plain FTP_TLS opens every data connection with a fresh TLS session, which a server that binds data
// connections to their control session must refuse (as vsftpd's require_ssl_reuse does); the well-known subclass
// that passes `session=self.sock.session` works, on TLS 1.2 and TLS 1.3.

const USER = 'alice';
const PASSWORD = 'alice-secret';
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const VERSIONS = ['TLSv1_2', 'TLSv1_3'] as const;
const SIZES = { empty: 0, one: 1, mib: 1024 * 1024 } as const;

/** Python prelude: a logged-in client of class `cls`, TLS pinned to `version` (ssl.TLSVersion member name). */
function client(port: number, version: string, cls = 'ReusedSessionFTP_TLS'): string {
  return `${PY_REUSE_FTP_TLS}
import json, ssl, sys, hashlib
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.minimum_version = ssl.TLSVersion.${version}
ctx.maximum_version = ssl.TLSVersion.${version}
ftp = ${cls}(context=ctx, timeout=10)
ftp.connect('127.0.0.1', ${port})
ftp.auth()
ftp.login('${USER}', '${PASSWORD}')
ftp.prot_p()
`;
}

function auditsFor(t: TestServer, path: string, direction: string): Array<Record<string, unknown>> {
  return t.logs().filter((l) => l.audit === true && l.event === 'transfer' && l.path === path && l.direction === direction);
}

describe('Python ftplib', () => {
  let t: TestServer;
  let local: string;
  before(async () => {
    t = await startTestServer();
    local = await mkdtemp(join(tmpdir(), 'ftpsd-ftplib-'));
  });
  after(async () => {
    await t.close();
    await rm(local, { recursive: true, force: true });
  });

  for (const version of VERSIONS) {
    const tlsName = version.replace('_', '.');
    test(`${tlsName}: storbinary and retrbinary keep the SHA-256 of 0 B, 1 B and 1 MiB files`, async () => {
      const bodies: Record<string, Buffer> = {};
      for (const [name, size] of Object.entries(SIZES)) {
        bodies[name] = randomBytes(size);
        await writeFile(join(local, `${version}-${name}`), bodies[name]!);
      }
      const code = `${client(t.port, version)}
out = {}
for name in ${JSON.stringify(Object.keys(SIZES))}:
    remote = '${version}-' + name + '.bin'
    with open(sys.argv[1] + '/${version}-' + name, 'rb') as f:
        out[name + ':stor'] = ftp.storbinary('STOR ' + remote, f)
    h = hashlib.sha256()
    out[name + ':retr'] = ftp.retrbinary('RETR ' + remote, h.update)
    out[name + ':sha256'] = h.hexdigest()
ftp.quit()
print(json.dumps(out))
`;
      const r = await runPython(code.replace('sys.argv[1]', JSON.stringify(local)));
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as Record<string, string>;
      for (const [name, size] of Object.entries(SIZES)) {
        const remote = `/${version}-${name}.bin`;
        const body = bodies[name]!;
        assert.match(out[`${name}:stor`] ?? '', /^226/);
        assert.match(out[`${name}:retr`] ?? '', /^226/);
        assert.equal(out[`${name}:sha256`], sha256(body), `${name} downloaded`);
        assert.equal(sha256(await readFile(join(t.home(USER), remote))), sha256(body), `${name} stored`);
        const up = auditsFor(t, remote, 'upload').at(-1);
        assert.equal(up?.sha256, sha256(body));
        assert.equal(up?.bytes, size);
        assert.equal(up?.tlsVersion, tlsName);
        assert.equal(up?.resumed, true);
        assert.equal(up?.result, 'ok');
        const down = auditsFor(t, remote, 'download').at(-1);
        assert.equal(down?.resumed, true);
        assert.equal(down?.tlsVersion, tlsName);
      }
    });

    test(`${tlsName}: an interrupted download continued with rest= yields the whole file`, async () => {
      const body = randomBytes(3 * 1024 * 1024 + 5);
      await writeFile(join(t.home(USER), `resume-${version}.bin`), body);
      // The first RETR is dropped after about 1 MiB (the client closes the data connection and aborts); then
      // RETR with REST at the length received so far.
      const code = `${client(t.port, version)}
import socket
buf = bytearray()
conn = ftp.transfercmd('RETR resume-${version}.bin')
while len(buf) < 1024 * 1024:
    chunk = conn.recv(65536)
    if not chunk:
        break
    buf += chunk
conn.close()
try:
    ftp.voidresp()
except ftplib.all_errors as e:
    pass
first = len(buf)
def more(b):
    buf.extend(b)
ftp.retrbinary('RETR resume-${version}.bin', more, rest=first)
print(json.dumps({'first': first, 'sha256': hashlib.sha256(bytes(buf)).hexdigest(), 'size': len(buf)}))
`;
      const r = await runPython(code);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { first: number; sha256: string; size: number };
      assert.ok(out.first > 0 && out.first < body.length, `first part ${out.first}`);
      assert.equal(out.size, body.length);
      assert.equal(out.sha256, sha256(body));
      const last = auditsFor(t, `/resume-${version}.bin`, 'download').at(-1);
      assert.equal(last?.offset, out.first);
      assert.equal(last?.result, 'ok');
    });

    test(`${tlsName}: plain FTP_TLS (no session reuse) is refused with 425 "not resumed"`, async () => {
      const code = `${client(t.port, version, 'ftplib.FTP_TLS')}
try:
    ftp.retrlines('NLST')
    print('accepted')
except ftplib.error_temp as e:
    print(str(e))
except (ssl.SSLError, OSError):
    # The data connection was dropped after its handshake; the reason is the reply on the control connection.
    try:
        print(ftp.getresp())
    except ftplib.error_temp as e:
        print(str(e))
`;
      const r = await runPython(code);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^425 .*not resumed/);
    });
  }
});

describe('Python ftplib with tls.requireDataSessionReuse off', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ config: { tls: { requireDataSessionReuse: false } } });
  });
  after(() => t.close());

  for (const version of VERSIONS) {
    test(`${version.replace('_', '.')}: plain FTP_TLS transfers, and the audit says the session was not resumed`, async () => {
      const code = `${client(t.port, version, 'ftplib.FTP_TLS')}
import io
print(ftp.storbinary('STOR plain-${version}.txt', io.BytesIO(b'plain ftplib\\n')))
chunks = []
print(ftp.retrbinary('RETR plain-${version}.txt', chunks.append))
print(b''.join(chunks).decode())
`;
      const r = await runPython(code);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split('\n'), ['226 Transfer complete', '226 Transfer complete', 'plain ftplib']);
      const up = auditsFor(t, `/plain-${version}.txt`, 'upload').at(-1);
      assert.equal(up?.resumed, false);
      assert.equal(up?.result, 'ok');
    });
  }
});
