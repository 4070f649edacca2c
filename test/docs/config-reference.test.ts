import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { defaultConfig } from '../../src/config/schema.js';
import { isRuntimeKey } from '../../src/ops/config-reload.js';

const ROOT = new URL('../../', import.meta.url);
const read = (p: string) => readFileSync(new URL(p, ROOT), 'utf8');

function leaves(node: unknown, prefix = ''): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
    const path = prefix === '' ? k : `${prefix}.${k}`;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) for (const [p, x] of leaves(v, path)) out.set(p, x);
    else out.set(path, v);
  }
  return out;
}

/** Rows of the table between the config-reference markers: key → { default, reload, meaning }. */
function referenceRows(md: string): Map<string, { value: string; reload: string; meaning: string }> {
  const start = md.indexOf('<!-- config-reference:start -->');
  const end = md.indexOf('<!-- config-reference:end -->');
  assert.ok(start >= 0 && end > start, 'the admin guide holds the reference between its markers');
  const rows = new Map<string, { value: string; reload: string; meaning: string }>();
  for (const line of md.slice(start, end).split('\n')) {
    const m = /^\| `([^`]+)` \| `(.*)` \| (applied|restart) \| (.+) \|$/.exec(line);
    if (m === null) continue;
    assert.ok(!rows.has(m[1]!), `${m[1]} appears once`);
    rows.set(m[1]!, { value: m[2]!, reload: m[3]!, meaning: m[4]! });
  }
  return rows;
}

test('the configuration reference lists every schema key with its default and reload behaviour', () => {
  const rows = referenceRows(read('docs/admin-guide.md'));
  const schema = leaves(defaultConfig());
  assert.deepEqual([...rows.keys()].filter((k) => !schema.has(k)), [], 'keys documented that the schema does not have');
  assert.deepEqual([...schema.keys()].filter((k) => !rows.has(k)), [], 'schema keys missing from the reference');
  for (const [key, value] of schema) {
    const row = rows.get(key)!;
    assert.equal(row.value, JSON.stringify(value), `default of ${key}`);
    assert.equal(row.reload, isRuntimeKey(key) ? 'applied' : 'restart', `SIGHUP behaviour of ${key}`);
    assert.ok(row.meaning.trim().length > 3, `${key} is explained`);
  }
});

test('the container files publish the default control port and passive range', () => {
  const d = defaultConfig();
  const range = `${d.pasv.minPort}-${d.pasv.maxPort}`;
  assert.match(read('Dockerfile'), new RegExp(`^EXPOSE ${d.listen.port} ${range}$`, 'm'));
  assert.match(read('Dockerfile'), /^USER node$/m);
  assert.match(read('Dockerfile'), /^VOLUME \["\/app\/config", "\/app\/certs", "\/app\/data"\]$/m);
  const compose = read('compose.yaml');
  assert.ok(compose.includes(`"${d.listen.port}:${d.listen.port}"`));
  assert.ok(compose.includes(`"${range}:${range}"`));
  assert.match(read('contrib/systemd/ftpsd.service'), /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
});
