import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseProxyHeader } from '../../src/cluster/proxy-protocol.js';

const SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

function v2(verCmd: number, fam: number, body: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length);
  return Buffer.concat([SIG, Buffer.from([verCmd, fam]), len, body]);
}

function v2Tcp4(src: number[], sport: number): Buffer {
  const body = Buffer.alloc(12);
  Buffer.from(src).copy(body, 0);
  Buffer.from([10, 0, 0, 1]).copy(body, 4);
  body.writeUInt16BE(sport, 8);
  body.writeUInt16BE(2121, 10);
  return v2(0x21, 0x11, body);
}

describe('PROXY protocol header parsing', () => {
  test('v1 TCP4 and TCP6 name the client; bytes after the header are not consumed', () => {
    const line = 'PROXY TCP4 203.0.113.9 10.0.0.1 51234 2121\r\n';
    const r = parseProxyHeader(Buffer.from(line + 'AUTH TLS\r\n'));
    assert.deepEqual(r, { kind: 'proxied', source: { ip: '203.0.113.9', port: 51234 }, consumed: line.length });
    const r6 = parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::7 2001:db8::1 443 2121\r\n'));
    assert.equal(r6.kind, 'proxied');
    assert.deepEqual(r6.kind === 'proxied' && r6.source, { ip: '2001:db8::7', port: 443 });
  });

  test('v1 UNKNOWN is the balancer itself (health check)', () => {
    assert.equal(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')).kind, 'local');
  });

  test('v1 in pieces is incomplete until the CRLF arrives', () => {
    assert.equal(parseProxyHeader(Buffer.from('PRO')).kind, 'incomplete');
    assert.equal(parseProxyHeader(Buffer.from('PROXY TCP4 203.0.113.9 10.0.0.1 5')).kind, 'incomplete');
  });

  test('v1 malformed headers are invalid with a reason', () => {
    const cases: Array<[string, string]> = [
      ['PROXY TCP4 203.0.113.9 10.0.0.1 51234\r\n', 'v1_fields'],
      ['PROXY UDP4 203.0.113.9 10.0.0.1 1 2\r\n', 'v1_protocol'],
      ['PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n', 'v1_address'],
      ['PROXY TCP4 203.0.113.9 10.0.0.1 070 2\r\n', 'v1_port'],
      ['PROXY TCP4 203.0.113.9 10.0.0.1 65536 2\r\n', 'v1_port'],
      [`PROXY TCP4 ${'1'.repeat(120)}`, 'v1_too_long'],
      ['USER alice\r\n', 'no_proxy_header'],
    ];
    for (const [text, reason] of cases) assert.deepEqual(parseProxyHeader(Buffer.from(text)), { kind: 'invalid', reason }, text);
  });

  test('v2 TCP4 and TCP6 (PROXY command) name the client; LOCAL and UNSPEC keep the connection address', () => {
    const h = v2Tcp4([198, 51, 100, 4], 40000);
    assert.deepEqual(parseProxyHeader(Buffer.concat([h, Buffer.from([0x16, 0x03])])), { kind: 'proxied', source: { ip: '198.51.100.4', port: 40000 }, consumed: h.length });
    const body6 = Buffer.alloc(36);
    Buffer.from('20010db8000000000000000000000009', 'hex').copy(body6, 0);
    body6.writeUInt16BE(1234, 32);
    const r6 = parseProxyHeader(v2(0x21, 0x21, body6));
    assert.deepEqual(r6.kind === 'proxied' && r6.source, { ip: '2001:db8::9', port: 1234 });
    assert.equal(parseProxyHeader(v2(0x20, 0x00, Buffer.alloc(0))).kind, 'local');
    assert.equal(parseProxyHeader(v2(0x21, 0x00, Buffer.alloc(0))).kind, 'local');
  });

  test('v2 with TLVs after the addresses consumes them too', () => {
    const body = Buffer.concat([v2Tcp4([192, 0, 2, 1], 1).subarray(16), Buffer.from([0x04, 0x00, 0x02, 0xab, 0xcd])]);
    const h = v2(0x21, 0x11, body);
    const r = parseProxyHeader(h);
    assert.equal(r.kind === 'proxied' && r.consumed, h.length);
  });

  test('v2 truncated is incomplete; wrong version, command, family, length are invalid', () => {
    const h = v2Tcp4([192, 0, 2, 1], 1);
    for (let n = 1; n < h.length; n++) assert.equal(parseProxyHeader(h.subarray(0, n)).kind, 'incomplete', `prefix ${n}`);
    assert.deepEqual(parseProxyHeader(v2(0x11, 0x11, Buffer.alloc(12))), { kind: 'invalid', reason: 'v2_version' });
    assert.deepEqual(parseProxyHeader(v2(0x22, 0x11, Buffer.alloc(12))), { kind: 'invalid', reason: 'v2_command' });
    assert.deepEqual(parseProxyHeader(v2(0x21, 0x12, Buffer.alloc(12))), { kind: 'invalid', reason: 'v2_family' });
    assert.deepEqual(parseProxyHeader(v2(0x21, 0x11, Buffer.alloc(8))), { kind: 'invalid', reason: 'v2_address_length' });
    const huge = Buffer.concat([SIG, Buffer.from([0x21, 0x11, 0xff, 0xff])]);
    assert.deepEqual(parseProxyHeader(huge), { kind: 'invalid', reason: 'v2_too_long' });
  });
});
