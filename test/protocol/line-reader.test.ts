import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LineReader, type LineEvent } from '../../src/protocol/line-reader.js';

const IAC = 0xff;
const SB = 250;
const SE = 240;
const WILL = 251;
const IP = 244;
const DM = 242;

function lines(events: LineEvent[]): string[] {
  return events.map((e) => (e.kind === 'line' ? e.bytes.toString('latin1') : `<overlong ${e.bytes}>`));
}

function feed(reader: LineReader, ...chunks: Array<Buffer | string>): LineEvent[] {
  return chunks.flatMap((c) => reader.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c));
}

describe('LineReader', () => {
  const script = 'USER alice\r\nPASS p\u00e4ss word \r\nCWD  a b\nNOOP\r\n';
  const expected = ['USER alice', 'PASS p\u00e4ss word ', 'CWD  a b', 'NOOP'];

  it('reassembles lines split at every byte boundary', () => {
    const bytes = Buffer.from(script, 'latin1');
    for (let i = 0; i <= bytes.length; i++) {
      const r = new LineReader(512);
      assert.deepEqual(lines(feed(r, bytes.subarray(0, i), bytes.subarray(i))), expected, `split at byte ${i}`);
      assert.equal(r.pendingBytes, 0);
    }
  });

  it('reassembles lines fed one byte at a time and split at every pair of boundaries', () => {
    const bytes = Buffer.from(script, 'latin1');
    const r = new LineReader(512);
    const events: LineEvent[] = [];
    for (const b of bytes) events.push(...r.push(Buffer.from([b])));
    assert.deepEqual(lines(events), expected);
    for (let i = 0; i < bytes.length; i += 3) {
      for (let j = i; j <= bytes.length; j += 5) {
        const r2 = new LineReader(512);
        assert.deepEqual(lines(feed(r2, bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j))), expected, `split at ${i}/${j}`);
      }
    }
  });

  it('accepts CRLF and bare LF, keeping a lone CR inside the line', () => {
    const r = new LineReader(512);
    assert.deepEqual(lines(feed(r, 'A\r\nB\nC\rD\r\n\r\n')), ['A', 'B', 'C\rD', '']);
  });

  it('holds an unfinished line back and reports its size', () => {
    const r = new LineReader(512);
    assert.deepEqual(lines(feed(r, 'AUTH TLS\r\nUS')), ['AUTH TLS']);
    assert.equal(r.pendingBytes, 2);
    assert.deepEqual(lines(feed(r, 'ER x\r\n')), ['USER x']);
    assert.equal(r.pendingBytes, 0);
  });

  it('turns IAC IAC into one 0xFF byte (RFC 854)', () => {
    const r = new LineReader(512);
    const [ev] = feed(r, Buffer.from([...Buffer.from('CWD a'), IAC, IAC, ...Buffer.from('b\r\n')]));
    assert.ok(ev?.kind === 'line');
    assert.deepEqual([...ev.bytes], [...Buffer.from('CWD a'), 0xff, ...Buffer.from('b')]);
  });

  it('drops IAC IP, IAC DM and IAC WILL <option>, also across chunk boundaries', () => {
    const seq = Buffer.from([IAC, IP, IAC, DM, IAC, WILL, 1, ...Buffer.from('ABOR\r\n')]);
    for (let i = 0; i <= seq.length; i++) {
      const r = new LineReader(512);
      assert.deepEqual(lines(feed(r, seq.subarray(0, i), seq.subarray(i))), ['ABOR'], `split at ${i}`);
    }
  });

  it('drops a complete subnegotiation IAC SB ... IAC SE', () => {
    const r = new LineReader(512);
    const seq = Buffer.from([...Buffer.from('NO'), IAC, SB, 24, 0, 65, IAC, SE, ...Buffer.from('OP\r\n')]);
    assert.deepEqual(lines(feed(r, seq)), ['NOOP']);
  });

  it('recovers at the next line end from a subnegotiation that is never closed', () => {
    // A client that sends IAC SB by accident (binary garbage) must not make the session deaf to every later command.
    const r = new LineReader(512);
    const events = feed(r, Buffer.from([IAC, SB, 1, 2, 3, 0x0d, 0x0a]), 'NOOP\r\n');
    assert.equal(lines(events).at(-1), 'NOOP');
  });

  it('keeps NUL bytes in the line', () => {
    const r = new LineReader(512);
    const [ev] = feed(r, Buffer.from('RETR a\0b\r\n', 'latin1'));
    assert.ok(ev?.kind === 'line');
    assert.deepEqual([...ev.bytes], [...Buffer.from('RETR a\0b', 'latin1')]);
  });

  it('reports an overlong line once, however it is fed, and keeps the next line intact', () => {
    const cap = 16;
    const long = 'X'.repeat(100);
    const r = new LineReader(cap);
    const events: LineEvent[] = [];
    for (const ch of long) events.push(...r.push(Buffer.from(ch)));
    assert.equal(events.length, 0, 'nothing is emitted before the line ends');
    events.push(...feed(r, '\r\nNOOP\r\n'));
    assert.equal(events.length, 2);
    assert.deepEqual(events[0], { kind: 'overlong', bytes: 101 });
    assert.deepEqual(lines(events.slice(1)), ['NOOP']);
    // A line exactly at the cap is still a line.
    assert.deepEqual(lines(feed(r, `${'Y'.repeat(cap)}\n`)), ['Y'.repeat(cap)]);
  });

  it('does not grow memory when a client never sends a line end', () => {
    const r = new LineReader(4096);
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    // Settle allocations made by the test framework before measuring.
    globalThis.gc?.();
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 256; i++) assert.deepEqual(r.push(chunk), []);
    const grown = process.memoryUsage().arrayBuffers - before;
    // 16 MiB went in; a reader that buffered it would have grown by that much.
    assert.ok(grown < 4 * 1024 * 1024, `array buffers grew by ${grown} bytes`);
    const events = feed(r, '\nSYST\r\n');
    assert.deepEqual(events[0], { kind: 'overlong', bytes: 256 * 64 * 1024 });
    assert.deepEqual(lines(events.slice(1)), ['SYST']);
  });
});
