import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer } from '../helpers/server.js';

// What a 227 reply advertises behind NAT: pasv.externalAddress, a per-network override, or our own address.

async function pasvAddress(pasv: Record<string, unknown>): Promise<{ pasv: string; epsv: number }> {
  const t = await startTestServer({ config: { pasv, defender: { enabled: false } } });
  try {
    const c = await ControlClient.connect(t.port);
    await c.read();
    assert.equal((await c.login('alice', 'alice-secret')).code, 230);
    const r = await c.send('PASV');
    assert.equal(r.code, 227, r.text);
    const m = /\((\d+),(\d+),(\d+),(\d+),\d+,\d+\)/.exec(r.text);
    assert.ok(m, r.text);
    const epsv = await c.epsv();
    c.close();
    return { pasv: m.slice(1, 5).join('.'), epsv };
  } finally {
    await t.close();
  }
}

test('without settings PASV advertises the control connection local address', async () => {
  assert.equal((await pasvAddress({})).pasv, '127.0.0.1');
});

test('pasv.externalAddress is what PASV advertises (ForcePasvIP)', async () => {
  assert.equal((await pasvAddress({ externalAddress: '203.0.113.7' })).pasv, '203.0.113.7');
});

test('a client inside an override network is given the override address; EPSV still names only a port', async () => {
  const r = await pasvAddress({ externalAddress: '203.0.113.7', addressOverrides: [{ cidr: '127.0.0.0/8', address: '10.0.0.5' }] });
  assert.equal(r.pasv, '10.0.0.5');
  assert.ok(r.epsv > 0);
});

test('a client outside the override networks gets the external address', async () => {
  const r = await pasvAddress({ externalAddress: '203.0.113.7', addressOverrides: [{ cidr: '192.0.2.0/24', address: '10.0.0.5' }] });
  assert.equal(r.pasv, '203.0.113.7');
});
