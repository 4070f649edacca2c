import assert from 'node:assert/strict';
import { Readable, type Transform } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, test } from 'node:test';
import { crlfToLf, lfToCrlf } from '../../src/data/ascii-mode.js';

// TYPE A (RFC 959 §3.1.1.1) conversions fed in awkward chunks: a CR LF pair may be split across two reads.

function run(transform: Transform, chunks: string[]): Promise<string> {
  return buffer(Readable.from(chunks.map((c) => Buffer.from(c, 'latin1'))).pipe(transform)).then((b) => b.toString('latin1'));
}

describe('TYPE A line ends', () => {
  test('upload: CRLF becomes LF, also when the pair is split across chunks', async () => {
    assert.equal(await run(crlfToLf(), ['a\r\nb\r\n']), 'a\nb\n');
    assert.equal(await run(crlfToLf(), ['a\r', '\nb\r', '\n']), 'a\nb\n');
    assert.equal(await run(crlfToLf(), ['a\r', '', '\nb']), 'a\nb');
  });

  test('upload: a CR not followed by LF is kept, also at the very end', async () => {
    assert.equal(await run(crlfToLf(), ['a\rb']), 'a\rb');
    assert.equal(await run(crlfToLf(), ['a\r', 'b']), 'a\rb');
    assert.equal(await run(crlfToLf(), ['end\r']), 'end\r');
    assert.equal(await run(crlfToLf(), ['\r\r\n']), '\r\n');
  });

  test('download: bare LF becomes CRLF; an existing CRLF is not doubled, also across chunks', async () => {
    assert.equal(await run(lfToCrlf(), ['a\nb\n']), 'a\r\nb\r\n');
    assert.equal(await run(lfToCrlf(), ['a\r\nb']), 'a\r\nb');
    assert.equal(await run(lfToCrlf(), ['a\r', '\nb\n']), 'a\r\nb\r\n');
    assert.equal(await run(lfToCrlf(), ['\n', '\n']), '\r\n\r\n');
  });

  test('bytes above 127 pass through unchanged', async () => {
    const text = Buffer.from('grüße\n日本\n', 'utf8').toString('latin1');
    const back = await run(crlfToLf(), [await run(lfToCrlf(), [text])]);
    assert.equal(back, text);
  });
});
