import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatReply, quotePath } from '../../src/protocol/reply.js';

/** How an RFC 959 client reads replies: a reply ends at the first line that is "<same code><space>". */
function clientRead(wire: string): Array<{ code: number; lines: string[] }> {
  const out: Array<{ code: number; lines: string[] }> = [];
  const all = wire.split('\r\n');
  assert.equal(all.pop(), '', 'the wire text ends with CRLF');
  let current: { code: number; lines: string[] } | null = null;
  for (const line of all) {
    if (current === null) {
      const m = /^(\d{3})([ -])/.exec(line);
      assert.ok(m, `reply starts with a code: ${JSON.stringify(line)}`);
      current = { code: Number(m[1]), lines: [line] };
      if (m[2] === ' ') {
        out.push(current);
        current = null;
      }
      continue;
    }
    current.lines.push(line);
    if (line.startsWith(`${current.code} `)) {
      out.push(current);
      current = null;
    }
  }
  assert.equal(current, null, 'no reply left open');
  return out;
}

describe('formatReply', () => {
  it('writes a single-line reply', () => {
    assert.equal(formatReply({ code: 200, text: 'NOOP ok' }), '200 NOOP ok\r\n');
    assert.equal(formatReply({ code: 200, text: ['only line'] }), '200 only line\r\n');
  });

  it('writes a multi-line reply per RFC 959 §4.2 with inner lines that cannot end it early', () => {
    const wire = formatReply({ code: 211, text: ['Features:', 'EPSV', '211 not the end', '211-nor this', 'End'] });
    assert.equal(wire, '211-Features:\r\n EPSV\r\n 211 not the end\r\n 211-nor this\r\nEnd'.replace('End', '211 End') + '\r\n');
    const replies = clientRead(wire);
    assert.equal(replies.length, 1);
    assert.equal(replies[0]!.lines.length, 5);
  });

  it('keeps CR and LF in text from forging another reply', () => {
    const forged = 'name\r\n230 Login successful';
    for (const wire of [
      formatReply({ code: 550, text: forged }),
      formatReply({ code: 550, text: `a\nb\rc` }),
      formatReply({ code: 213, text: ['Status follows:', forged, `x\n230 y`, 'End'] }),
      formatReply({ code: 250, text: ['first', forged] }),
    ]) {
      const replies = clientRead(wire);
      assert.equal(replies.length, 1, JSON.stringify(wire));
      assert.ok(!replies.some((r) => r.code === 230));
      assert.ok(!/[\r\n]/.test(wire.slice(0, -2).replace(/\r\n/g, '')), 'no stray CR or LF');
    }
  });
});

describe('quotePath', () => {
  it('doubles quotes inside a quoted pathname (RFC 959 §7)', () => {
    assert.equal(quotePath('/plain'), '"/plain"');
    assert.equal(quotePath('/a"b'), '"/a""b"');
    assert.equal(quotePath('/"x"'), '"/""x"""');
    assert.equal(quotePath(''), '""');
  });
});
