import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PY_REUSE_FTP_TLS, runPython } from '../helpers/clients.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// Python's ftplib (with the session-reusing subclass partners are given) keeping one session for a long batch: 100
// uploads and downloads in turn, and a session that sits idle for 70 s between two transfers, as a script waiting
// for its next file does. Each data connection must still resume the control session, however many came before it
// and however long ago the last one was.

const USER = 'alice';
const PASSWORD = 'alice-secret';
const VERSIONS = ['TLSv1_2', 'TLSv1_3'] as const;
const ROUNDS = 100;
const IDLE_SECONDS = 70;

/** Python prelude: a logged-in client `ftp` with TLS pinned to `version` (an ssl.TLSVersion member name). */
function client(port: number, version: string): string {
  return `${PY_REUSE_FTP_TLS}
import hashlib, io, json, os, ssl, time
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.minimum_version = ssl.TLSVersion.${version}
ctx.maximum_version = ssl.TLSVersion.${version}
ftp = ReusedSessionFTP_TLS(context=ctx, timeout=10)
ftp.connect('127.0.0.1', ${port})
ftp.auth()
ftp.login('${USER}', '${PASSWORD}')
ftp.prot_p()

def round_trip(name, body):
    stor = ftp.storbinary('STOR ' + name, io.BytesIO(body))
    h = hashlib.sha256()
    retr = ftp.retrbinary('RETR ' + name, h.update)
    return {'name': name, 'stor': stor, 'retr': retr, 'sent': hashlib.sha256(body).hexdigest(), 'received': h.hexdigest()}
`;
}

interface RoundTrip {
  name: string;
  stor: string;
  retr: string;
  sent: string;
  received: string;
}

describe('Python ftplib: long sessions', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  /** Checks one session's round trips against the client's own hashes and the server's audit trail. */
  function assertRoundTrips(trips: RoundTrip[], version: string, sid: string | undefined): void {
    const tlsName = version.replace('_', '.');
    for (const trip of trips) {
      assert.match(trip.stor, /^226 /, trip.name);
      assert.match(trip.retr, /^226 /, trip.name);
      assert.equal(trip.received, trip.sent, `${trip.name} came back unchanged`);
      const records = t.logs().filter((l) => l.audit === true && l.event === 'transfer' && l.path === `/${trip.name}`);
      assert.deepEqual(records.map((r) => r.direction), ['upload', 'download'], trip.name);
      assert.equal(records[0]?.sha256, trip.sent, `server-side hash of ${trip.name}`);
      for (const r of records) {
        assert.equal(r.sid, sid, 'all on one control session');
        assert.equal(r.resumed, true);
        assert.equal(r.tlsVersion, tlsName);
        assert.equal(r.result, 'ok');
      }
    }
  }

  const sessionOf = (prefix: string) => t.logs().find((l) => l.audit === true && l.event === 'transfer' && String(l.path).startsWith(`/${prefix}`))?.sid as string | undefined;

  for (const version of VERSIONS) {
    test(`${version.replace('_', '.')}: ${ROUNDS} alternating STOR and RETR on one session`, async () => {
      const r = await runPython(
        `${client(t.port, version)}
trips = [round_trip('alt-${version}-%03d.bin' % i, os.urandom(1 + (i * 7919) % 200_000)) for i in range(${ROUNDS})]
ftp.quit()
print(json.dumps(trips))
`,
        { timeoutMs: 90_000 },
      );
      assert.equal(r.code, 0, r.stderr);
      const trips = JSON.parse(r.stdout) as RoundTrip[];
      assert.equal(trips.length, ROUNDS);
      assertRoundTrips(trips, version, sessionOf(`alt-${version}-`));
      assert.deepEqual(t.logs().filter((l) => l.event === 'data_connection_refused'), []);
    });
  }

  test(`a session idle for ${IDLE_SECONDS} s between two transfers (TLS 1.2 and TLS 1.3 side by side) keeps working`, { timeout: 150_000 }, async () => {
    // The default limits.idleTimeoutMs (15 minutes) is well above the pause; the test server keeps it.
    assert.ok(t.server.config.limits.idleTimeoutMs > (IDLE_SECONDS + 10) * 1000, `idle timeout ${t.server.config.limits.idleTimeoutMs} ms`);
    const runs = await Promise.all(
      VERSIONS.map((version) =>
        runPython(
          `${client(t.port, version)}
trips = [round_trip('idle-${version}-before.bin', os.urandom(300_000))]
time.sleep(${IDLE_SECONDS})
trips.append(round_trip('idle-${version}-after.bin', os.urandom(300_000)))
ftp.quit()
print(json.dumps(trips))
`,
          { timeoutMs: (IDLE_SECONDS + 40) * 1000 },
        ),
      ),
    );
    for (const [i, version] of VERSIONS.entries()) {
      const r = runs[i]!;
      assert.equal(r.code, 0, r.stderr);
      const trips = JSON.parse(r.stdout) as RoundTrip[];
      assert.equal(trips.length, 2);
      assertRoundTrips(trips, version, sessionOf(`idle-${version}-`));
      const at = (name: string, direction: string) => Number(t.logs().find((l) => l.audit === true && l.event === 'transfer' && l.path === `/${name}` && l.direction === direction)?.time);
      const pause = at(`idle-${version}-after.bin`, 'upload') - at(`idle-${version}-before.bin`, 'download');
      assert.ok(pause >= IDLE_SECONDS * 1000, `the session was idle ${pause} ms`);
    }
    assert.equal(t.logs().some((l) => l.event === 'idle_timeout'), false);
  });
});
