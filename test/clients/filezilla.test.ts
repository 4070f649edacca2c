import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileZillaVersion, launchFileZilla, readFileZillaLog, seedFileZillaSettings, type FileZilla } from '../helpers/filezilla.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startXvfb, waitFor, xvfbUnavailable, type XDisplay } from '../helpers/xvfb.js';

// FileZilla, the client most partners use, driven through its window on a private X server (Xvfb): it connects from
// an ftpes:// URL given on its command line, lists the home directory, then uploads one file and downloads another
// because a file was selected in its local or remote pane and Enter was pressed, as a user would. FileZilla is the
// strictest client about TLS session resumption on data connections (it drops a data connection whose session was
// not resumed), so the server's records must show every data connection resumed its control session.
//
// ftpsd has no maximum-TLS-version setting (only tls.minVersion), so TLS 1.2 is forced on the client side, as the
// other client tests do: FileZilla's GnuTLS reads an override file named by GNUTLS_SYSTEM_PRIORITY_FILE, and
// `disabled-version = tls1.3` there removes TLS 1.3 from every priority string, FileZilla's own included.

const USER = 'alice';
const PASSWORD = 'alice-secret';
const UPLOAD = 'from-filezilla.bin';
const DOWNLOAD = 'for-filezilla.bin';
const VERSIONS = [
  { name: 'TLSv1.3', gnutlsOverrides: null },
  { name: 'TLSv1.2', gnutlsOverrides: '[overrides]\ndisabled-version = tls1.3\n' },
] as const;

/** Each wait is bounded, and all of a test's waits together by BUDGET_MS, so a hang fails with a screenshot. */
const WAIT = { window: 15_000, listing: 15_000, transferStart: 8_000, transfer: 15_000 } as const;
const BUDGET_MS = 50_000;
/** Enter pressed this many times at most when FileZilla started no transfer after it. */
const ACTIVATE_ATTEMPTS = 3;

type LogLine = Record<string, unknown>;

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Prometheus text format → "name{labels}" → value. */
async function scrapeMetrics(port: number): Promise<Map<string, number>> {
  const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of body.split('\n')) {
    const m = /^(ftpsd_\S+?)(\{.*\})? (\S+)$/.exec(line);
    if (m !== null) out.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return out;
}

function sumOf(metrics: Map<string, number>, name: string, filter: (labels: string) => boolean = () => true): number {
  let sum = 0;
  for (const [key, value] of metrics) {
    const m = /^([^{]+)(\{.*\})?$/.exec(key);
    if (m?.[1] === name && filter(m[2] ?? '')) sum += value;
  }
  return sum;
}

describe('FileZilla through its window (Xvfb)', { skip: xvfbUnavailable() ?? false }, () => {
  let display: XDisplay;
  let version: string;
  let work: string;
  const running = new Set<FileZilla>();

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ftpsd-filezilla-'));
    display = await startXvfb();
    version = await fileZillaVersion(display, join(work, 'version-home'));
  });
  after(async () => {
    for (const fz of running) await fz.stop();
    await display?.stop();
    await rm(work, { recursive: true, force: true });
  });

  for (const tls of VERSIONS) {
    test(`${tls.name}: ftpes:// URL logs in and lists; an upload and a download from the panes resume the session`, { timeout: BUDGET_MS + 20_000 }, async (ctx) => {
      const dir = join(work, tls.name);
      const home = join(dir, 'home');
      const local = join(dir, 'local');
      const fzLog = join(dir, 'filezilla.log');
      await mkdir(local, { recursive: true });

      const t: TestServer = await startTestServer({
        users: [{ name: USER, password: PASSWORD }],
        config: { metrics: { enabled: true, host: '127.0.0.1', port: 0 } },
      });
      const metricsPort = t.server.metricsPort;
      assert.ok(metricsPort !== null);
      const upBody = randomBytes(1_048_576 + 123);
      const downBody = randomBytes(700_001);
      await writeFile(join(local, UPLOAD), upBody);
      await writeFile(join(t.home(USER), DOWNLOAD), downBody);

      const env: NodeJS.ProcessEnv = {};
      if (tls.gnutlsOverrides !== null) {
        env.GNUTLS_SYSTEM_PRIORITY_FILE = join(dir, 'gnutls.config');
        await writeFile(env.GNUTLS_SYSTEM_PRIORITY_FILE, tls.gnutlsOverrides);
      }
      await seedFileZillaSettings(join(home, '.config', 'filezilla'), {
        version,
        host: '127.0.0.1',
        port: t.port,
        certPem: await readFile(join(t.dir, 'certs', 'self-signed.crt')),
        logFile: fzLog,
      });
      const deadline = Date.now() + BUDGET_MS;
      /** A phase's wait, cut short where the test's budget ends first. */
      const within = (ms: number): number => Math.max(0, Math.min(ms, deadline - Date.now()));
      const fz = launchFileZilla({ display, home, localDir: local, url: `ftpes://${USER}:${PASSWORD}@127.0.0.1:${t.port}`, env });
      running.add(fz);
      const launched = Date.now();
      const marks: string[] = [];
      const mark = (what: string) => marks.push(`${what} ${((Date.now() - launched) / 1000).toFixed(1)} s`);

      const audit = (event: string): LogLine[] => t.logs().filter((l) => l.audit === true && l.event === event);
      const commands = (): string[] => t.logs().filter((l) => l.msg === 'command').map((l) => String(l.cmd));
      const transferOf = (direction: string, name: string) =>
        audit('transfer').find((l) => l.direction === direction && l.path === `/${name}` && l.result === 'ok');

      /**
       * Enter on `name` in `pane`; pressed again only when FileZilla started nothing (no "Starting upload/download" in
       * its log, no command at the server), that is when the keystrokes did not reach a selected entry.
       */
      const transferThroughPane = async (pane: 'local' | 'remote', name: string, verb: 'STOR' | 'RETR', direction: 'upload' | 'download') => {
        const started = async () => {
          if (commands().includes(`${verb} ${name}`)) return true;
          const log = await readFileZillaLog(fzLog);
          return log.split('\n').some((l) => l.includes(`Starting ${direction} of`) && l.trimEnd().endsWith(`/${name}`)) ? true : undefined;
        };
        for (let attempt = 1; ; attempt++) {
          // Enter with nothing selected reaches the Quickconnect button, whose "no host" message box must go first.
          if (attempt > 1) await display.xdotool(['key', 'Escape']);
          await fz.activateInPane(pane, name);
          try {
            await waitFor(`FileZilla to start the ${direction} of ${name}`, within(WAIT.transferStart), started);
            break;
          } catch (err) {
            if (attempt >= ACTIVATE_ATTEMPTS) throw err;
            ctx.diagnostic(`FileZilla started nothing after Enter on ${name} (attempt ${attempt}); trying again`);
          }
        }
        return waitFor(`the ${direction} audit record of /${name}`, within(WAIT.transfer), () => transferOf(direction, name));
      };

      try {
        await fz.mainWindow(within(WAIT.window));
        mark('window');

        // Logged in and listed: the server saw the login, MLSD answered over a resumed data connection, and
        // FileZilla showed the listing.
        const listed = Date.now() + WAIT.listing;
        await waitFor('the login audit record', within(listed - Date.now()), () => audit('login').find((l) => l.user === USER));
        await waitFor('a listing sent to FileZilla', within(listed - Date.now()), async () => (sumOf(await scrapeMetrics(metricsPort), 'ftpsd_transfers_total', (l) => l.includes('direction="listing"') && l.includes('result="ok"')) >= 1 ? true : undefined));
        await waitFor('FileZilla to show the listing', within(listed - Date.now()), async () => ((await readFileZillaLog(fzLog)).includes('Directory listing of "/" successful') ? true : undefined));
        assert.ok(commands().some((c) => c === 'MLSD' || c.startsWith('LIST')), 'FileZilla asked for a listing');
        mark('listing');

        const up = await transferThroughPane('local', UPLOAD, 'STOR', 'upload');
        mark('upload');
        const down = await transferThroughPane('remote', DOWNLOAD, 'RETR', 'download');
        mark('download');
        // The audit record is written when the server has sent everything; FileZilla may still be writing the file.
        await waitFor(`${DOWNLOAD} written in full by FileZilla`, within(WAIT.transfer), async () => ((await stat(join(local, DOWNLOAD)).catch(() => null))?.size === downBody.length ? true : undefined));

        assert.equal(sha256(await readFile(join(t.home(USER), UPLOAD))), sha256(upBody), 'the uploaded file on the server');
        assert.equal(up.sha256, sha256(upBody), 'the SHA-256 in the upload audit record');
        assert.equal(up.bytes, upBody.length);
        assert.equal(sha256(await readFile(join(local, DOWNLOAD))), sha256(downBody), 'the downloaded file');
        assert.equal(down.bytes, downBody.length);

        // Every control connection used the version under test, and every data connection resumed its session.
        const handshakes = audit('tls');
        assert.ok(handshakes.length >= 1);
        for (const h of handshakes) assert.equal(h.protocol, tls.name, `control connection ${String(h.sid)}`);
        assert.deepEqual(
          audit('data_connection_refused'),
          [],
          'no data connection was refused (a refusal after a resumed TLS 1.3 data connection means the server sent no fresh session ticket)',
        );
        for (const tr of audit('transfer')) {
          assert.equal(tr.resumed, true, `${String(tr.direction)} ${String(tr.path)} resumed the control session`);
          assert.equal(tr.resumedFromSession, undefined, `${String(tr.direction)} ${String(tr.path)} resumed its own control session, not a sibling's`);
          assert.equal(tr.tlsVersion, tls.name);
          assert.equal(tr.result, 'ok');
        }
        // Listings have no audit record; the data-connection counter covers them: as many data connections that resumed
        // their own control session as listings and transfers, and none refused, in clear, timed out or resumed from a
        // sibling session.
        const m = await scrapeMetrics(metricsPort);
        const resumed = sumOf(m, 'ftpsd_data_connections_total', (l) => l.includes('result="resumed"'));
        const otherwise = sumOf(m, 'ftpsd_data_connections_total', (l) => !l.includes('result="resumed"'));
        const moved = sumOf(m, 'ftpsd_transfers_total');
        assert.equal(otherwise, 0, "data connections that did not resume their own control connection's session");
        assert.equal(resumed, moved, 'every listing and transfer had a resumed data connection');
        assert.ok(resumed >= 3, `at least a listing, the upload and the download (${resumed})`);
        ctx.diagnostic(`FileZilla ${version}, ${tls.name}: ${handshakes.length} control connections, ${resumed} data connections, all resumed; after start: ${marks.join(', ')}`);
      } catch (err) {
        const shot = join(tmpdir(), `ftpsd-filezilla-${tls.name}-${Date.now()}.png`);
        const took = await display.screenshot(shot).then(
          () => `screenshot: ${shot}`,
          (e: unknown) => `no screenshot: ${String(e)}`,
        );
        const events = t.logs().filter((l) => l.audit === true || l.msg === 'command' || l.level === 40 || l.level === 50);
        const detail = [
          took,
          `FileZilla log:\n${(await readFileZillaLog(fzLog)).split('\n').slice(-40).join('\n')}`,
          `FileZilla output:\n${fz.output().slice(-2_000)}`,
          `server events:\n${events.map((l) => JSON.stringify(l)).join('\n').slice(-6_000)}`,
        ].join('\n');
        console.log(`# FileZilla ${tls.name} failed; ${took}`);
        throw new Error(`${err instanceof Error ? err.message : String(err)}\n${detail}`, { cause: err });
      } finally {
        await fz.stop();
        running.delete(fz);
        await t.close();
      }
    });
  }
});
