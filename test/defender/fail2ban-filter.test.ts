import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { defaultConfig } from '../../src/config/schema.js';
import { Defender } from '../../src/defender/defender.js';
import { createLogger } from '../../src/log/logger.js';

// The fail2ban filters in contrib/ read the JSON lines the server logs. Here their regexes are translated to
// JavaScript (<HOST> becomes a capture group) and run on lines produced by the real logger; where fail2ban-regex is
// installed, fail2ban itself is run on the same lines too.

const contrib = fileURLToPath(new URL('../../contrib/fail2ban/', import.meta.url));

interface Filter {
  failregex: RegExp[];
  datepattern: RegExp;
}

async function loadFilter(name: string): Promise<Filter> {
  const text = await readFile(join(contrib, 'filter.d', name), 'utf8');
  const values = new Map<string, string[]>();
  let current: string[] | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.startsWith('[')) {
      current = null;
      continue;
    }
    const m = /^(\w+)\s*=\s*(.*)$/.exec(line);
    if (m) {
      current = m[2] === '' ? [] : [m[2]!];
      values.set(m[1]!, current);
    } else if (current !== null && /^\s+\S/.test(line)) {
      current.push(line.trim()); // an indented line continues a multi-line value
    } else current = null;
  }
  const unescape = (v: string) => v.replaceAll('%%', '%');
  const failregex = (values.get('failregex') ?? []).map((r) => new RegExp(unescape(r).replace('<HOST>', '(?<host>[0-9A-Fa-f:.]+)')));
  const date = unescape(values.get('datepattern')?.[0] ?? '')
    .replace('%Y', '\\d{4}')
    .replace(/%[mdHMS]/g, '\\d{2}');
  return { failregex, datepattern: new RegExp(date) };
}

function hostOf(filter: Filter, line: string): string | null {
  for (const re of filter.failregex) {
    const m = re.exec(line);
    if (m) return m.groups?.host ?? null;
  }
  return null;
}

let lines: string[] = [];
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ftpsd-f2b-'));
  const log = createLogger('info', { write: (s: string) => void lines.push(s.trimEnd()) });
  log.info({ event: 'login_failed', ip: '203.0.113.9', user: 'bob' }, 'login failed');
  // Field order differs, and the user name tries to smuggle in another address.
  log.info({ ip: '2001:db8::5', event: 'login_failed', user: 'x","ip":"6.6.6.6' }, 'login failed');
  log.child({ sid: 'a1b2' }).info({ event: 'login_failed', ip: '198.51.100.23', user: 'carol', reason: 'bad_password' }, 'login failed');
  log.info({ event: 'login', ip: '198.51.100.1', user: 'bob' }, 'login');
  const defender = new Defender({ config: { ...defaultConfig().defender, threshold: 1, fileWatchIntervalMs: 0 }, file: join(dir, 'bans.json'), log });
  defender.record('192.0.2.7', 'failedLogin', { user: 'eve' });
  defender.close();
  lines = lines.filter((l) => l !== '');
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('contrib/fail2ban filters', () => {
  it('ftpsd.conf finds the address of every failed login and nothing else', async () => {
    const filter = await loadFilter('ftpsd.conf');
    assert.equal(filter.failregex.length, 2);
    assert.deepEqual(
      lines.map((l) => hostOf(filter, l)),
      ['203.0.113.9', '2001:db8::5', '198.51.100.23', null, null],
    );
    // The spec'd shape of the server's line, written by hand.
    assert.equal(hostOf(filter, '{"level":30,"time":"2025-01-31T12:00:00.000Z","msg":"login failed","event":"login_failed","ip":"192.0.2.200","user":"u"}'), '192.0.2.200');
  });

  it('ftpsd-ban.conf finds the address of the defender ban line only', async () => {
    const filter = await loadFilter('ftpsd-ban.conf');
    assert.deepEqual(
      lines.map((l) => hostOf(filter, l)),
      [null, null, null, null, '192.0.2.7'],
    );
  });

  it('the date pattern finds the timestamp the logger writes', async () => {
    for (const name of ['ftpsd.conf', 'ftpsd-ban.conf']) {
      const filter = await loadFilter(name);
      for (const line of lines) assert.match(line, filter.datepattern, `${name}: ${line}`);
    }
  });

  const f2b = (process.env.PATH ?? '').split(delimiter).map((p) => join(p, 'fail2ban-regex')).find((p) => existsSync(p));
  it('fail2ban-regex itself extracts the same addresses', { skip: f2b === undefined ? 'fail2ban-regex not installed' : false }, async () => {
    const logFile = join(dir, 'ftpsd.log');
    await writeFile(logFile, `${lines.join('\n')}\n`);
    const run = (filter: string) =>
      new Promise<string>((resolve, reject) => {
        execFile(f2b!, ['-o', 'ip', logFile, join(contrib, 'filter.d', filter)], { timeout: 30_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
      });
    assert.deepEqual((await run('ftpsd.conf')).trim().split('\n'), ['203.0.113.9', '2001:db8::5', '198.51.100.23']);
    assert.deepEqual((await run('ftpsd-ban.conf')).trim().split('\n'), ['192.0.2.7']);
  });
});
