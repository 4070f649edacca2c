import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { runProcess } from '../helpers/clients.js';

// The table of tested clients in the partner guide must describe what the suite really runs: every version it names
// is the version installed here (a Debian upgrade that changes a client makes this fail until the table is updated),
// every row names a test file that exists and covers each TLS version of the row, and every sessions-* client test
// has a row.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const GUIDE = join(ROOT, 'docs', 'partner-guide.md');

interface Row {
  client: string;
  version: string;
  tls: string;
  test: string;
}

function matrixRows(): Row[] {
  const text = readFileSync(GUIDE, 'utf8');
  const block = /<!-- client-matrix:start -->\n([\s\S]*?)<!-- client-matrix:end -->/.exec(text)?.[1];
  assert.ok(block !== undefined, 'the partner guide has a client-matrix block');
  const lines = block.split('\n').filter((l) => l.startsWith('|'));
  const header = cells(lines[0] ?? '');
  const col = (name: string) => {
    const i = header.indexOf(name);
    assert.ok(i >= 0, `column ${name} in ${header.join(', ')}`);
    return i;
  };
  const [client, version, tls, testFile] = ['Client', 'Version', 'TLS', 'Test'].map(col) as [number, number, number, number];
  return lines.slice(2).map((line) => {
    const c = cells(line);
    assert.equal(c.length, header.length, `row has every column: ${line}`);
    return { client: c[client]!, version: c[version]!, tls: c[tls]!, test: c[testFile]!.replace(/`/g, '') };
  });
}

function cells(line: string): string[] {
  return line.replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim());
}

/** Runs a client's version command; its output (stdout and stderr: java prints its version on stderr). */
async function output(command: string, args: string[]): Promise<string> {
  const r = await runProcess(command, args, { timeoutMs: 30_000 });
  assert.equal(r.code, 0, `${command} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout + r.stderr;
}

function capture(text: string, re: RegExp): string {
  const m = re.exec(text);
  assert.ok(m?.[1] !== undefined, `${re} in ${text}`);
  return m[1];
}

/** What is installed, by the first word of the row's Client cell: every version the row may name. */
const INSTALLED: Record<string, () => Promise<string[]>> = {
  curl: async () => [capture(await output('curl', ['--version']), /^curl (\d[\w.]*)/)],
  lftp: async () => [capture(await output('lftp', ['--version']), /Version (\d[\w.]*)/)],
  rclone: async () => [capture(await output('rclone', ['version']), /^rclone v(\d+(?:\.\d+)*)/)],
  Python: async () => [capture(await output('python3', ['--version']), /Python (\d+(?:\.\d+)*)/)],
  Apache: async () => [
    capture(await output('dpkg-query', ['-W', '-f=${Version}', 'libcommons-net-java']), /^(\d+(?:\.\d+)*)/),
    capture(await output('java', ['-version']), /version "(\d+(?:\.\d+)*)/),
  ],
};

/** `named` (from the table) is `installed` or a prefix of it ending at a dot: "3.11" names 3.11.7. */
function names(named: string, installed: string): boolean {
  return installed === named || installed.startsWith(`${named}.`);
}

describe('the tested-clients table in docs/partner-guide.md', () => {
  const rows = matrixRows();

  test('every row names a client this check knows, a test file that exists, and TLS versions that file runs', () => {
    assert.ok(rows.length >= 5, `${rows.length} rows`);
    for (const row of rows) {
      const key = row.client.split(' ')[0]!;
      assert.ok(key in INSTALLED, `a version probe for "${row.client}"`);
      assert.match(row.test, /^test\/clients\/[\w.-]+\.test\.ts$/, row.client);
      const file = join(ROOT, row.test);
      assert.ok(existsSync(file), `${row.test} exists`);
      const source = readFileSync(file, 'utf8');
      const versions = row.tls.split(',').map((v) => v.trim());
      assert.ok(versions.length > 0 && versions.every((v) => /^1\.[23]$/.test(v)), `TLS cell "${row.tls}"`);
      for (const v of versions) assert.match(source, new RegExp(`TLSv1[._]${v.slice(2)}`), `${row.test} runs TLS ${v}`);
    }
  });

  test('every client session test has a row', () => {
    const listed = new Set(rows.map((r) => r.test));
    const tests = readdirSync(join(ROOT, 'test', 'clients')).filter((f) => /^sessions-.*\.test\.ts$/.test(f));
    assert.ok(tests.length >= 5);
    for (const f of tests) assert.ok(listed.has(`test/clients/${f}`), `test/clients/${f} is in the table`);
  });

  for (const row of rows) {
    test(`${row.client}: the version in the table is the one installed`, async () => {
      const installed = await INSTALLED[row.client.split(' ')[0]!]!();
      // Every version number in the Client and Version cells ("3.9.0", "OpenJDK 17") names an installed version.
      const named = `${row.client} ${row.version}`.match(/\d+(?:\.\d+)*/g) ?? [];
      assert.ok(named.length > 0, `a version for ${row.client}`);
      for (const n of named) assert.ok(installed.some((i) => names(n, i)), `${row.client}: table says ${n}, installed ${installed.join(', ')}`);
    });
  }
});
