import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalIp, CidrSet, cidrContains, formatCidr, normalizeIp, parseCidr, parseIp } from '../../src/defender/cidr.js';

function contains(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr);
  const a = parseIp(ip);
  assert.ok(c, `parse ${cidr}`);
  assert.ok(a, `parse ${ip}`);
  return cidrContains(c, a);
}

describe('cidr', () => {
  it('matches IPv4 blocks at their edges', () => {
    assert.equal(contains('203.0.113.0/24', '203.0.113.0'), true);
    assert.equal(contains('203.0.113.0/24', '203.0.113.255'), true);
    assert.equal(contains('203.0.113.0/24', '203.0.114.0'), false);
    assert.equal(contains('203.0.113.0/24', '203.0.112.255'), false);
    assert.equal(contains('10.0.0.0/8', '10.255.255.255'), true);
    assert.equal(contains('0.0.0.0/0', '198.51.100.7'), true);
    assert.equal(contains('198.51.100.7', '198.51.100.7'), true);
    assert.equal(contains('198.51.100.7', '198.51.100.8'), false);
    assert.equal(contains('192.168.1.128/25', '192.168.1.127'), false);
  });

  it('matches IPv6 blocks, with and without compression', () => {
    assert.equal(contains('2001:db8::/32', '2001:db8:ffff::1'), true);
    assert.equal(contains('2001:db8::/32', '2001:db9::1'), false);
    assert.equal(contains('2001:db8:0:0:0:0:0:0/64', '2001:0db8:0000:0000:abcd::1'), true);
    assert.equal(contains('2001:db8::/64', '2001:db8:0:1::1'), false);
    assert.equal(contains('::1/128', '::1'), true);
    assert.equal(contains('fe80::/10', 'febf::1'), true);
    assert.equal(contains('fe80::/10', 'fec0::1'), false);
  });

  it('treats IPv4-mapped IPv6 addresses as the IPv4 address they carry', () => {
    assert.equal(contains('127.0.0.0/8', '::ffff:127.0.0.1'), true);
    assert.equal(contains('127.0.0.0/8', '::FFFF:7f00:1'), true); // hex form of the same address
    assert.equal(contains('127.0.0.0/8', '::ffff:128.0.0.1'), false);
    assert.equal(contains('::ffff:10.0.0.0/104', '10.1.2.3'), true);
    assert.deepEqual(formatCidr(parseCidr('::ffff:10.0.0.0/104')!), '10.0.0.0/8');
    // An IPv6 block does not swallow IPv4 clients: families never mix.
    assert.equal(contains('::/0', '127.0.0.1'), false);
    assert.equal(contains('0.0.0.0/0', '::1'), false);
  });

  it('clears host bits of a block', () => {
    assert.equal(formatCidr(parseCidr('203.0.113.9/24')!), '203.0.113.0/24');
    assert.equal(formatCidr(parseCidr('2001:db8::1/32')!), '2001:db8::/32');
  });

  it('refuses what is not an address or block', () => {
    for (const bad of ['', 'localhost', '1.2.3', '1.2.3.4/33', '1.2.3.4/-1', '1.2.3.4/8/8', '::1/129', '256.1.1.1', '1.2.3.4/ 8', 'fe80::1%eth0/64', '2001:db8::/1e1']) {
      assert.equal(parseCidr(bad), null, bad);
    }
    assert.equal(parseIp('example.com'), null);
    assert.equal(canonicalIp('1.2.3.4.5'), null);
  });

  it('gives the canonical text of an address (RFC 5952)', () => {
    assert.equal(canonicalIp('2001:0DB8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
    assert.equal(canonicalIp('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1'); // first of two equal runs
    assert.equal(canonicalIp('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1'); // a single zero group stays
    assert.equal(canonicalIp('0:0:0:0:0:0:0:0'), '::');
    assert.equal(canonicalIp('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(canonicalIp('::192.0.2.1'), '::c000:201');
    assert.equal(canonicalIp('1:2:3:4:5:6:192.0.2.1'), '1:2:3:4:5:6:c000:201');
    assert.equal(canonicalIp('fe80::1%eth0'), 'fe80::1');
    assert.equal(canonicalIp('010.1.1.1'), null); // leading zeros are ambiguous (octal in some parsers)
  });

  it('normalizes mapped addresses cheaply', () => {
    assert.equal(normalizeIp('::ffff:198.51.100.7'), '198.51.100.7');
    assert.equal(normalizeIp('::FFFF:198.51.100.7'), '198.51.100.7');
    assert.equal(normalizeIp('2001:DB8::1'), '2001:db8::1');
    assert.equal(normalizeIp('198.51.100.7'), '198.51.100.7');
  });

  it('answers membership for a set of blocks', () => {
    const set = new CidrSet(['127.0.0.0/8', '::1', '2001:db8:1::/48']);
    assert.equal(set.has('::ffff:127.0.0.1'), true);
    assert.equal(set.has('127.9.9.9'), true);
    assert.equal(set.has('::1'), true);
    assert.equal(set.has('2001:db8:1:ffff::5'), true);
    assert.equal(set.has('2001:db8:2::5'), false);
    assert.equal(set.has('192.0.2.1'), false);
    assert.equal(set.has('not an ip'), false);
    assert.equal(new CidrSet([]).has('127.0.0.1'), false);
    assert.throws(() => new CidrSet(['10.0.0.0/8', 'nonsense']), /nonsense/);
  });
});
