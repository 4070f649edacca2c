import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { loadSharedCertificate } from '../../src/store/cluster-repo.js';
import { CLIENT_IP, startCluster, type ClusterNode, type ClusterTopology } from '../helpers/cluster.js';
import { PY_REUSE_FTP_TLS, runCurl } from '../helpers/clients.js';
import { ControlClient } from '../helpers/control-client.js';
import { acmeTestSettings, chainVerifies, startPebble, type Pebble } from '../helpers/pebble.js';

// ACME across three nodes sharing one PostgreSQL store, against a real pebble: every node wants a certificate at its
// start, exactly one orders it (the others find the order lock taken), the certificate lands in the store, and every
// node serves it on new FTPS connections, while FTPS sessions opened before the swap keep transferring on their old
// TLS sessions. The order is held at its dns-01 challenge (the hook waits for a gate file) so the test can look at
// the cluster while one node is ordering.

const PARTNERS = `
users:
  acme:
    home: '{root}/acme'
    permissions: { /: [list, download, upload, overwrite, delete] }
`;
const PASSWORD = 'acme-Secret-1';
const DOMAIN = 'ftps.test';
const fixtureHook = new URL('../fixtures/dns-hook.sh', import.meta.url);

/** SHA-256 fingerprint as lowercase hex without separators (node:crypto gives AA:BB:...). */
const hex = (fingerprint256: string) => fingerprint256.replaceAll(':', '').toLowerCase();

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The certificate a node presents after AUTH TLS on a new control connection (verified against `ca` when given). */
async function servedCertificate(c: ClusterTopology, node: ClusterNode, ca?: string): Promise<X509Certificate> {
  const client = await ControlClient.connect(c.nodePort, node.ip, CLIENT_IP);
  try {
    assert.equal((await client.read())?.code, 220);
    const verify = ca === undefined ? {} : { ca, rejectUnauthorized: true, servername: DOMAIN };
    const r = await client.authTls(verify);
    assert.equal(r.code, 234);
    return (client.socket as TLSSocket).getPeerX509Certificate()!;
  } finally {
    client.close();
  }
}

interface SessionRound {
  tag: string;
  sessions: Array<{ ip: string; control: string; up: { reused: boolean; fp: string }; down: { reused: boolean; fp: string }; ok: boolean; listed: boolean }>;
}

describe('ACME across three nodes with pebble', () => {
  let pebble: Pebble;
  let work: string;
  let c: ClusterTopology;
  const gate = () => join(work, 'GATE');

  before(async () => {
    pebble = await startPebble();
    work = await mkdtemp(join(tmpdir(), 'ftpsd-cluster-acme-'));
    const fixture = join(work, 'dns-hook.sh');
    await copyFile(fixtureHook, fixture);
    await chmod(fixture, 0o755);
    // The operator's dns-01 hook, behind a gate: `add` tells the test it was called, then waits for the gate file.
    const hook = join(work, 'gated-hook.sh');
    await writeFile(
      hook,
      `#!/bin/sh\nif [ "$1" = add ]; then\n  echo "add $2" >> '${join(work, 'adds')}'\n  while [ ! -e '${gate()}' ]; do sleep 0.05; done\nfi\nexec '${fixture}' "$@"\n`,
      { mode: 0o755 },
    );
    // The nodes run the hook as their child and inherit this from the test process.
    process.env.CHALLTESTSRV_URL = pebble.challtestsrvUrl;
    const acme = { ...acmeTestSettings(pebble, work), domains: [DOMAIN], challenges: ['dns-01'], dns01: { hook, hookTimeoutMs: 60_000 }, challengeTimeoutMs: 60_000 };
    c = await startCluster({
      layout: 'direct',
      partners: PARTNERS,
      passwords: { acme: PASSWORD },
      config: { acme },
      // Each node keeps its own copy of the certificate files (and its own file lock); the store holds the cluster's.
      nodeConfig: (id) => ({ acme: { dir: join(work, id) } }),
    });
    await mkdir(join(c.storage.root, 'acme'), { recursive: true });
  }, { timeout: 120_000 });

  after(async () => {
    await writeFile(gate(), '').catch(() => undefined);
    await c?.close();
    await pebble?.stop();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  test('one node orders, every node serves the certificate from the store, and open sessions survive the swap', async (t) => {
    // One node holds the order (its hook waits at the gate); the two others tried too and found the lock taken.
    await until('the dns-01 hook of the ordering node', () => readFile(join(work, 'adds'), 'utf8').then((s) => (s === '' ? undefined : s), () => undefined), 20_000);
    const busy = (n: ClusterNode) => n.logs().some((l) => l.msg === 'acme renewal failed' && l.reason === 'busy');
    await until('two nodes refused the order lock', () => (c.nodes.filter(busy).length === 2 ? true : undefined), 20_000);

    // Until then every node serves the self-signed certificate it started with.
    const before = await Promise.all(c.nodes.map((n) => servedCertificate(c, n)));
    const selfSigned = hex(before[0]!.fingerprint256);
    for (const cert of before) assert.equal(hex(cert.fingerprint256), selfSigned);

    // Python ftplib sessions on every node, opened now: they transfer before the swap, wait, and transfer again.
    const py = spawn('python3', ['-c', sessionsScript(c)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    py.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => py.once('exit', (code) => resolve(code)));
    const lines = createInterface({ input: py.stdout })[Symbol.asyncIterator]();
    const nextRound = async (): Promise<SessionRound> => {
      const timer = setTimeout(() => py.kill('SIGKILL'), 60_000);
      const line = await lines.next();
      clearTimeout(timer);
      assert.equal(line.done, false, `ftplib ended early: ${stderr}`);
      return JSON.parse(line.value as string) as SessionRound;
    };
    try {
      const first = await nextRound();
      assert.equal(first.sessions.length, 3);
      for (const s of first.sessions) {
        assert.ok(s.ok && s.listed, `transfer on ${s.ip} before the swap`);
        assert.equal(s.control, selfSigned);
      }

      // Open the gate: the order completes, the certificate goes to the store, every node installs it.
      await writeFile(gate(), '');
      const shared = await until('the certificate in the store', async () => (await loadSharedCertificate(c.store.db, 'acme')) ?? undefined, 30_000);
      const issued = new X509Certificate(shared.cert_pem);
      assert.ok(chainVerifies(shared.cert_pem, pebble.rootPem), 'the stored chain verifies against pebble\'s root');
      const swapStarted = Date.now();
      for (const n of c.nodes) {
        // A new FTPS connection on each node: the handshake verifies against pebble's root for ftps.test.
        const served = await until(`${n.id} serving the ACME certificate`, async () => {
          const cert = await servedCertificate(c, n, pebble.rootPem).catch(() => undefined);
          return cert !== undefined && cert.fingerprint256 === issued.fingerprint256 ? cert : undefined;
        }, 10_000);
        assert.equal(served.serialNumber, issued.serialNumber);
      }
      t.diagnostic(`every node served the new certificate ${Date.now() - swapStarted} ms after it was stored`);

      // Exactly one order: pebble saw one, one node issued, the others installed the stored one.
      const output = pebble.output();
      assert.equal(output.match(/Added order/g)?.length, 1, 'pebble received one order');
      assert.equal(output.match(/Issued certificate serial/g)?.length, 1, 'pebble issued one certificate');
      assert.equal((await readFile(join(work, 'adds'), 'utf8')).trim().split('\n').length, 1, 'one dns-01 challenge was set up');
      const orderers = c.nodes.filter((n) => n.logs().some((l) => l.msg === 'acme certificate issued'));
      assert.equal(orderers.length, 1, 'one node ordered');
      assert.equal(shared.updated_by, orderers[0]!.id, 'the orderer stored it');
      for (const n of c.nodes.filter((x) => x !== orderers[0])) {
        assert.ok(n.logs().some((l) => l.msg === 'acme certificate installed' && l.from === 'store' && l.serial === issued.serialNumber), `${n.id} installed it from the store`);
      }

      // The sessions opened before the swap: still on their old certificate, their data connections resume their
      // old TLS sessions, and transfers work on every node, the orderer's included.
      py.stdin.write('go\n');
      const second = await nextRound();
      for (const s of second.sessions) {
        assert.ok(s.ok && s.listed, `transfer on ${s.ip} after the swap`);
        assert.equal(s.control, selfSigned, `the session on ${s.ip} keeps its certificate`);
        assert.ok(s.up.reused && s.down.reused, `data connections on ${s.ip} resumed the session's TLS session`);
      }
      assert.equal(await exited, 0, stderr);
    } finally {
      py.kill('SIGKILL');
    }

    // A real client through the balancer checks the new certificate by name, on control and data connections.
    const rootFile = join(work, 'pebble-root.pem');
    await writeFile(rootFile, pebble.rootPem);
    const curl = await runCurl([
      '--ssl-reqd', '--cacert', rootFile, '--resolve', `${DOMAIN}:${c.port}:127.0.0.1`, '--no-ftp-skip-pasv-ip', '--interface', CLIENT_IP,
      '-u', `acme:${PASSWORD}`, '--list-only', `ftp://${DOMAIN}:${c.port}/`,
    ]);
    assert.equal(curl.code, 0, curl.stderr);
    assert.match(curl.stdout, /after-127\.0\.0\.2\.bin/);
  });
});

/** ftplib sessions on every node: a round of STOR, RETR and NLST, a line of JSON, a wait for stdin, another round. */
function sessionsScript(c: ClusterTopology): string {
  return (
    PY_REUSE_FTP_TLS +
    String.raw`
import hashlib, io, json, os, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
fp = lambda sock: hashlib.sha256(sock.getpeercert(binary_form=True)).hexdigest()

class Probe(ReusedSessionFTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ReusedSessionFTP_TLS.ntransfercmd(self, cmd, rest)
        self.last_data = {'reused': conn.session_reused, 'fp': fp(conn)}
        return conn, size

sessions = []
for ip in ${JSON.stringify(c.nodes.map((n) => n.ip))}:
    ftp = Probe(context=ctx, timeout=20, source_address=('${CLIENT_IP}', 0))
    # The nodes advertise their own address in 227 replies (the direct layout).
    ftp.trust_server_pasv_ipv4_address = True
    ftp.connect(ip, ${c.nodePort}); ftp.auth(); ftp.login('acme', '${PASSWORD}'); ftp.prot_p()
    sessions.append((ip, ftp))

def transfer_round(tag):
    out = []
    for ip, ftp in sessions:
        data = os.urandom(100000)
        name = '%s-%s.bin' % (tag, ip)
        ftp.storbinary('STOR ' + name, io.BytesIO(data)); up = ftp.last_data
        got = io.BytesIO(); ftp.retrbinary('RETR ' + name, got.write); down = ftp.last_data
        out.append({'ip': ip, 'control': fp(ftp.sock), 'up': up, 'down': down, 'ok': got.getvalue() == data, 'listed': name in ftp.nlst()})
    print(json.dumps({'tag': tag, 'sessions': out}), flush=True)

transfer_round('before')
sys.stdin.readline()
transfer_round('after')
for ip, ftp in sessions:
    ftp.quit()
`
  );
}
