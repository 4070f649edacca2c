import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { runLftp, type RunResult } from '../helpers/clients.js';
import { startAdminServer, type AdminServer } from './admin-helpers.js';

// The web admin in a real browser: Debian's Chromium, headless, driven by puppeteer-core (which downloads no browser).
// One browser for the whole file. A person's path through it: log in, create a partner, set its rate in the editor,
// watch its session and transfer appear while lftp downloads, kick it, lift a ban, find both in the audit search.
// Screenshots of each step go to test-output/web-admin/.

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = fileURLToPath(new URL('../../test-output/web-admin/', import.meta.url));
const BANNED = '192.0.2.9';

describe('web admin in Chromium', () => {
  let s: AdminServer;
  let browser: Browser;
  let page: Page;
  let base: string;
  let web: { name: string; password: string };
  const consoleProblems: string[] = [];
  let lftp: Promise<RunResult> | null = null;

  const shot = async (name: string) => {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  };
  /** Submits the form of `selector` (a button inside it) and waits for the page it leads to. */
  const submit = async (selector: string) => {
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(selector)]);
  };
  const text = (selector: string) => page.$eval(selector, (el) => el.textContent ?? '');

  before(async () => {
    await mkdir(SHOTS, { recursive: true });
    s = await startAdminServer({ config: { defender: { allowList: ['127.0.0.1'] }, limits: { transferChunkBytes: 16_384 } } });
    base = `https://127.0.0.1:${s.adminPort}`;
    web = await s.account('web', 'admin');
    s.server.defender!.ban(BANNED, 3_600_000, 'test ban');
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      acceptInsecureCerts: true,
      // Chromium refuses to run as root with its sandbox on.
      args: [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    });
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleProblems.push(m.text());
    });
    page.on('pageerror', (e) => consoleProblems.push(String(e)));
    // Kick and unban ask first (data-confirm); a person clicks OK.
    page.on('dialog', (d) => void d.accept());
  });

  after(async () => {
    await browser?.close();
    await lftp?.catch(() => undefined);
    await s?.close();
  });

  it('logs in with a secure cookie and lands on the dashboard', async () => {
    await page.goto(`${base}/`);
    assert.match(page.url(), /\/login\?next=%2F$/, 'an anonymous visit goes to the login page');
    await page.type('input[name=name]', web.name);
    await page.type('input[name=password]', 'not the password');
    await submit('#login button[type=submit]');
    assert.match(await text('.error'), /Wrong name, password or code/);
    await page.type('input[name=password]', web.password);
    await submit('#login button[type=submit]');
    assert.equal(new URL(page.url()).pathname, '/');
    assert.equal(await text('h1'), 'Dashboard');
    const cookie = (await page.cookies()).find((c) => c.name === 'ftpsd_admin');
    assert.ok(cookie, 'login cookie set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.secure, true);
    assert.equal(cookie.sameSite, 'Strict');
    await shot('1-dashboard');
  });

  it('creates a partner through the "new partner" form and edits its policy', async () => {
    await page.goto(`${base}/partners`);
    await submit('#new-partner');
    await page.type('input[name=name]', 'webpartner');
    await page.type('input[name=basePath]', join(s.dir, 'exchange', 'webpartner'));
    await page.type('input[name=outboxRetentionDays]', '7');
    await submit('form.stack button[type=submit]');
    assert.match(await text('.msg'), /Partner webpartner created/);
    const password = (await text('#partner-password')).trim();
    assert.match(password, /^[A-Za-z0-9_-]{16}$/);
    await shot('2-partner-created');

    await page.goto(`${base}/partners/webpartner`);
    const yaml = await page.$eval('#partner-yaml', (el) => (el as unknown as { value: string }).value);
    assert.match(yaml, /\/inbox:\s*\n\s*- upload/);
    // The editor takes the partners file's format; the server paces this partner's downloads.
    await page.$eval('#partner-yaml', (el, extra) => ((el as unknown as { value: string }).value += extra), 'policy:\n  downloadBytesPerSecond: 100000\n');
    await submit('form.stack button[type=submit]');
    assert.match(await text('.msg'), /Saved/);
    const policy = (await s.request('GET', '/api/v1/users/webpartner/policy', { token: (await s.login(web.name, web.password)).json.token })).json;
    assert.deepEqual(policy, { downloadBytesPerSecond: 100_000 });
    await shot('3-partner-editor');

    await writeFile(join(s.dir, 'exchange', 'webpartner', 'outbox', 'report.bin'), Buffer.alloc(2_000_000, 1));
    // lftp at its own rate limit too: the download lasts about 20 s unless it is kicked.
    lftp = runLftp('get /outbox/report.bin -o /dev/null', { port: s.port, user: 'webpartner', password, settings: ['set net:limit-rate 100000'], timeoutMs: 60_000 });
  });

  it('shows the session and its transfer while lftp downloads, and kicks it', async () => {
    await page.goto(`${base}/`);
    // The sessions table refreshes itself every 2 s.
    const row = 'tr[data-user="webpartner"]';
    await page.waitForFunction((sel) => (globalThis as any).document.querySelector(sel)?.textContent?.includes('/outbox/report.bin') === true, { timeout: 15_000 }, row);
    const cells = await page.$eval(row, (el) => el.textContent ?? '');
    assert.match(cells, /127\.0\.0\.1/);
    assert.match(cells, /lftp/, 'client name from CLNT');
    assert.match(cells, /TLSv1\.[23]/);
    assert.match(cells, /download/);
    assert.match(cells, /of 1\.9 MiB/);
    await shot('4-session-transfer');
    await submit(`${row} button[name=kick]`);
    assert.match(await text('.msg'), /Session of webpartner closed/);
    const result = await lftp!;
    assert.notEqual(result.code, 0, 'lftp lost its session');
    assert.equal(await page.$(row), null, 'the session is gone');
    await page.waitForFunction(() => (globalThis as any).document.querySelector('#transfers')?.textContent?.includes('aborted') === true, { timeout: 10_000 });
    await shot('5-kicked');
  });

  it('lifts a ban', async () => {
    await page.goto(`${base}/bans`);
    const row = `tr[data-ip="${BANNED}"]`;
    assert.ok(await page.$(row), 'the ban is listed');
    await shot('6-bans');
    await submit(`${row} button[name=unban]`);
    assert.match(await text('.msg'), new RegExp(`Ban of ${BANNED.replace(/\./g, '\\.')} lifted`));
    assert.equal(await page.$(row), null);
    assert.equal(s.server.defender!.isBanned(BANNED), false);
  });

  it('finds the changes in the audit search, and shows the certificate', async () => {
    await page.goto(`${base}/audit?user=web&event=store_change`);
    const table = await text('#audit');
    assert.match(table, /kick/);
    assert.match(table, /unban/);
    assert.match(table, /webpartner/);
    await shot('7-audit');
    await submit('#verify');
    assert.match(await text('.msg'), /Audit chain intact/);
    await page.goto(`${base}/certificates`);
    assert.match(await text('#certificate'), /self-signed/);
    await shot('8-certificates');
  });

  it('refuses a form without its CSRF token, and ran no inline script', async (t) => {
    const status = await page.evaluate(async (ip) => {
      const res = await fetch(`/bans/${ip}/remove`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'x=1', redirect: 'manual' });
      return res.status;
    }, '192.0.2.10');
    assert.equal(status, 403);
    assert.deepEqual(consoleProblems.filter((p) => /Content Security Policy|Refused/i.test(p)), [], 'no CSP violation');
    t.diagnostic(`screenshots: ${SHOTS}`);
  });
});
