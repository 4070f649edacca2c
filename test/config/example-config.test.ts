import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { defaultConfig } from '../../src/config/schema.js';
import { renderExample, schemaComments } from '../../scripts/gen-example-config.js';

const example = readFileSync(new URL('../../config/ftpsd.example.yaml', import.meta.url), 'utf8');

test('the example config is what the schema generates (regenerate with npx tsx scripts/gen-example-config.ts)', () => {
  assert.equal(example, renderExample());
});

test('the example config holds every key with its default value', () => {
  assert.deepEqual(parse(example), defaultConfig());
});

test('every setting the issue names is documented with a comment', () => {
  const comments = schemaComments(readFileSync(new URL('../../src/config/schema.ts', import.meta.url), 'utf8'));
  for (const key of ['listen.host', 'listen.port', 'pasv.minPort', 'pasv.maxPort', 'pasv.externalAddress', 'tls.certFile', 'tls.keyFile', 'tls.minVersion', 'tls.requireForLogin', 'tls.requireForData', 'tls.requireDataSessionReuse', 'users.file', 'log.level', 'log.auditFile']) {
    assert.ok(comments.get(key), `${key} has no doc comment in src/config/schema.ts`);
  }
});
