import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { epsvReplyText, parseEprtArg, parsePortArg, pasvReplyText, unmapIPv4 } from '../../src/protocol/address-text.js';

describe('PASV and EPSV reply text', () => {
  it('encodes the address and port as RFC 959 h1,h2,h3,h4,p1,p2', () => {
    assert.equal(pasvReplyText('192.168.1.2', 50001), 'Entering Passive Mode (192,168,1,2,195,81)');
    assert.equal(pasvReplyText('127.0.0.1', 255), 'Entering Passive Mode (127,0,0,1,0,255)');
    assert.equal(pasvReplyText('10.0.0.1', 65535), 'Entering Passive Mode (10,0,0,1,255,255)');
  });

  it('gives only the port in EPSV (RFC 2428 §3)', () => {
    assert.equal(epsvReplyText(50001), 'Entering Extended Passive Mode (|||50001|)');
  });

  it('round-trips with parsePortArg', () => {
    const text = pasvReplyText('203.0.113.9', 40_123);
    const inner = /\((.*)\)/.exec(text)![1]!;
    assert.deepEqual(parsePortArg(inner), { host: '203.0.113.9', port: 40_123 });
  });
});

describe('parsePortArg', () => {
  it('parses a well-formed argument', () => {
    assert.deepEqual(parsePortArg('127,0,0,1,4,1'), { host: '127.0.0.1', port: 1025 });
    assert.deepEqual(parsePortArg(' 10,1,2,3,195,80 '), { host: '10.1.2.3', port: 50000 });
  });

  it('refuses malformed arguments', () => {
    for (const arg of ['', '127,0,0,1,4', '127,0,0,1,4,1,7', '256,0,0,1,1,1', '1,2,3,4,5,256', '1,2,3,4,5,a', '-1,0,0,1,1,1',
      '1,2,3,4,0,0', '1.2.3.4,5,6', '1,2,3,4,5, 6', '1,,3,4,5,6', '1,2,3,4,5,6,', '0x1,2,3,4,5,6', '1234,2,3,4,5,6']) {
      assert.equal(parsePortArg(arg), null, JSON.stringify(arg));
    }
  });
});

describe('parseEprtArg', () => {
  it('parses RFC 2428 §2 examples', () => {
    assert.deepEqual(parseEprtArg('|1|132.235.1.2|6275|'), { family: 1, host: '132.235.1.2', port: 6275 });
    assert.deepEqual(parseEprtArg('|2|1080::8:800:200C:417A|5282|'), { family: 2, host: '1080::8:800:200C:417A', port: 5282 });
    assert.deepEqual(parseEprtArg('!1!10.0.0.1!21!'), { family: 1, host: '10.0.0.1', port: 21 }, 'any printable delimiter');
  });

  it('refuses malformed arguments', () => {
    for (const arg of ['', '|', '|1|1.2.3.4|', '|3|1.2.3.4|21|', '|1|1.2.3.4|0|', '|1|1.2.3.4|65536|', '|1|1.2.3.4|21',
      '1|1.2.3.4|21|', '|1|1.2.3.4|21|x', '|1|1.2.3.4|2a|', ' |1|1.2.3.4|21|', '|1|1.2.3.4|21||']) {
      assert.equal(parseEprtArg(arg), null, JSON.stringify(arg));
    }
  });

  it('refuses a host that is not an address of the named family', () => {
    // A name here would make the server resolve and connect to whatever the client names.
    for (const arg of ['|1|not-an-ip|21|', '|1|::1|21|', '|2|127.0.0.1|21|', '|1||21|', '|1|ftp.example.com|21|']) {
      assert.equal(parseEprtArg(arg), null, JSON.stringify(arg));
    }
  });
});

describe('unmapIPv4', () => {
  it('unwraps IPv4-mapped IPv6 addresses only', () => {
    assert.equal(unmapIPv4('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(unmapIPv4('127.0.0.1'), '127.0.0.1');
    assert.equal(unmapIPv4('::1'), '::1');
    assert.equal(unmapIPv4('::ffff:nonsense'), '::ffff:nonsense');
  });
});
