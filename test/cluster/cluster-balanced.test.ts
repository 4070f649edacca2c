import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ControlClient } from '../helpers/control-client.js';
import { CLIENT_IP, startCluster, type ClusterTopology } from '../helpers/cluster.js';
import { CURL_UPLOAD_TLS_ARGS, PY_REUSE_FTP_TLS, runCurl, runLftp, runPython, type RunResult } from '../helpers/clients.js';

// Three nodes behind HAProxy, which also forwards each node's own passive range to it with send-proxy-v2
// (proxyProtocol.passive): clients see one address for everything, EPSV works, and each node checks the data
// connection against the client named in the balancer's header. Then nodes fail: one is killed mid-upload, and every
// node is restarted in turn while clients keep uploading.

const PARTNERS = `
users:
  acme:
    home: '{root}/acme'
    permissions: { /: [list, download, upload, overwrite, delete, rename, mkdir] }
  capped:
    home: '{root}/capped'
    permissions: { /: [list] }
    policy: { maxSessions: 1 }
`;
const PASSWORDS = { acme: 'acme-Secret-1', capped: 'capped-Secret-1' };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('three nodes, passive ranges forwarded by the balancer', () => {
  let c: ClusterTopology;
  before(async () => {
    c = await startCluster({ layout: 'balanced', partners: PARTNERS, passwords: PASSWORDS });
    for (const u of Object.keys(PASSWORDS)) await mkdir(join(c.storage.root, u), { recursive: true });
  }, { timeout: 90_000 });
  after(() => c?.close());

  const curl = (args: string[], timeoutMs?: number): Promise<RunResult> =>
    runCurl(['--ssl-reqd', '-k', '--interface', CLIENT_IP, '-u', `acme:${PASSWORDS.acme}`, ...args], timeoutMs === undefined ? {} : { timeoutMs });
  const base = () => `ftp://127.0.0.1:${c.port}`;

  test('curl, lftp and ftplib transfer through any node, with EPSV, over the forwarded ranges', async () => {
    const body = randomBytes(300_000);
    const local = join(c.dir, 'up.bin');
    await writeFile(local, body);
    for (let i = 0; i < 3; i++) {
      const up = await curl([...CURL_UPLOAD_TLS_ARGS, '-T', local, `${base()}/curl-${i}.bin`]);
      assert.equal(up.code, 0, up.stderr);
      const down = await curl([`${base()}/curl-${i}.bin`, '-o', join(c.dir, `down-${i}.bin`)]);
      assert.equal(down.code, 0, down.stderr);
      assert.equal(sha(await readFile(join(c.dir, `down-${i}.bin`))), sha(body));
    }
    for (let i = 0; i < 3; i++) {
      const lftp = await runLftp(
        [`put ${local} -o lftp-${i}.bin`, `get lftp-${i}.bin -o ${join(c.dir, `lftp-back-${i}.bin`)}`, 'cls -1'].join('\n'),
        { port: c.port, user: 'acme', password: PASSWORDS.acme, settings: [`set net:socket-bind-ipv4 ${CLIENT_IP}`, 'set ftp:prefer-epsv true'] },
      );
      assert.equal(lftp.code, 0, lftp.stderr);
      assert.match(lftp.stdout, new RegExp(`lftp-${i}\\.bin`));
      assert.equal(sha(await readFile(join(c.dir, `lftp-back-${i}.bin`))), sha(body));
    }
    const py = await runPython(
      PY_REUSE_FTP_TLS +
        String.raw`
import io, hashlib
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
data = open('${local}', 'rb').read()
for i in range(3):
    ftp = ReusedSessionFTP_TLS(context=ctx, timeout=10, source_address=('${CLIENT_IP}', 0))
    ftp.connect('127.0.0.1', ${c.port}); ftp.auth(); ftp.login('acme', '${PASSWORDS.acme}'); ftp.prot_p()
    ftp.storbinary('STOR py-%d.bin' % i, io.BytesIO(data))
    got = io.BytesIO(); ftp.retrbinary('RETR py-%d.bin' % i, got.write)
    assert hashlib.sha256(got.getvalue()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert 'py-%d.bin' % i in ftp.nlst()
    ftp.quit()
print('ok')
`,
    );
    assert.equal(py.code, 0, py.stderr);
    const perNode = c.loginsPerNode('acme');
    assert.ok(Object.values(perNode).every((n) => n >= 2), `logins on every node: ${JSON.stringify(perNode)}`);
    for (const n of c.nodes) {
      // The data connections came from the balancer; the header named the client, whose address the check compared.
      assert.ok(n.logs().some((l) => l.audit === true && l.event === 'transfer' && l.ip === CLIENT_IP), `${n.id} transferred for the client`);
      assert.equal(n.logs().some((l) => l.event === 'data_connection_refused'), false, `${n.id} refused no data connection`);
    }
  });

  test('a node killed mid-upload loses only its own session; no half file appears; a session cap held there is freed', async () => {
    const victim = c.nodes[1]!;
    const survivor = c.nodes[2]!;
    const big = join(c.dir, 'big.bin');
    await writeFile(big, randomBytes(4_000_000));
    const small = randomBytes(200_000);
    await writeFile(join(c.dir, 'small.bin'), small);
    // Straight to each node's control port (the client is not a balancer, so its own address counts).
    const at = (ip: string) => `ftp://${ip}:${c.nodePort}`;
    // A slow upload on the victim, a capped user's session there, and an upload on the survivor.
    const doomed = curl([...CURL_UPLOAD_TLS_ARGS, '--limit-rate', '500K', '-T', big, `${at(victim.ip)}/doomed.bin`], 20_000);
    const capped = await ControlClient.connect(c.nodePort, victim.ip, CLIENT_IP);
    assert.equal((await capped.read())?.code, 220);
    assert.equal((await capped.login('capped', PASSWORDS.capped)).code, 230);
    await victim.waitForLog((l) => l.audit === true && l.event === 'login' && l.user === 'acme', 10_000);
    await new Promise((r) => setTimeout(r, 1_500));
    const survivorUpload = curl([...CURL_UPLOAD_TLS_ARGS, '--limit-rate', '400K', '-T', join(c.dir, 'small.bin'), `${at(survivor.ip)}/survivor.bin`]);
    await new Promise((r) => setTimeout(r, 100));
    await victim.kill();
    const [lost, kept] = await Promise.all([doomed, survivorUpload]);
    assert.notEqual(lost.code, 0, 'the upload on the killed node failed');
    assert.equal(kept.code, 0, `the upload on another node completed: ${kept.stderr}`);
    const names = await readdir(join(c.storage.root, 'acme'));
    assert.ok(!names.includes('doomed.bin'), 'no half file under the target name');
    assert.equal(sha(await readFile(join(c.storage.root, 'acme', 'survivor.bin'))), sha(small));
    // The killed node's session of the capped user stops counting after cluster.sessionExpiryMs (3 s here).
    const deadline = Date.now() + 8_000;
    const again = await ControlClient.connect(c.nodePort, survivor.ip, CLIENT_IP);
    assert.equal((await again.read())?.code, 220);
    // Refused (530) while the dead node's row is younger than its expiry, then let in.
    let reply = await again.login('capped', PASSWORDS.capped);
    while (reply.code !== 230 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      await again.send('USER capped');
      reply = await again.send(`PASS ${PASSWORDS.capped}`);
    }
    again.close();
    assert.equal(reply.code, 230, 'a new session of the capped user once the dead node\'s session expired');
    capped.close();
    await victim.start();
  });

  test('a rolling restart of every node while clients upload loses no committed file', async () => {
    const payloads = new Map<string, Buffer>();
    let stop = false;
    const committed: string[] = [];
    let failed = 0;
    const worker = async (w: number) => {
      for (let i = 0; !stop && i < 200; i++) {
        const name = `roll-${w}-${i}.bin`;
        const body = randomBytes(50_000 + Math.floor(Math.random() * 150_000));
        const file = join(c.dir, name);
        await writeFile(file, body);
        payloads.set(name, body);
        const r = await curl([...CURL_UPLOAD_TLS_ARGS, '-T', file, `${base()}/${name}`], 15_000);
        if (r.code === 0) committed.push(name);
        else failed++;
      }
    };
    const workers = [0, 1, 2].map((w) => worker(w));
    for (const n of c.nodes) {
      await new Promise((r) => setTimeout(r, 700));
      // SIGTERM: the node stops taking sessions, lets running transfers finish, and exits; HAProxy's health check
      // takes it out of rotation meanwhile and puts it back once it listens again.
      await n.stop();
      await n.start();
    }
    await new Promise((r) => setTimeout(r, 700));
    stop = true;
    await Promise.all(workers);
    assert.ok(committed.length >= 10, `enough uploads went through (${committed.length} committed, ${failed} failed)`);
    const stored = new Set(await readdir(join(c.storage.root, 'acme')));
    for (const name of committed) {
      assert.ok(stored.has(name), `${name} was reported stored (226) and is there`);
      assert.equal(sha(await readFile(join(c.storage.root, 'acme', name))), sha(payloads.get(name)!), `${name} is whole`);
    }
    // Nothing half-written under a final name either: every roll-* file present was a committed one.
    for (const name of stored) if (name.startsWith('roll-')) assert.ok(committed.includes(name), `${name} is present but was not reported stored`);
  });
});
