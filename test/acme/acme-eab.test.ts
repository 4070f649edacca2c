import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AcmeError } from '../../src/acme/acme-error.js';
import { AcmeManager } from '../../src/acme/acme-manager.js';
import { type ConfigInput, configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/log/logger.js';
import { CertStore } from '../../src/tls/cert-store.js';
import { type Pebble, acmeTestSettings, chainVerifies, logCapture, startPebble } from '../helpers/pebble.js';

// RFC 8555 section 7.3.4: a CA that requires external account binding (ZeroSSL, Google, company CAs).
const KEY_ID = 'kid-ftpsd';
const HMAC_KEY = 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W';

describe('AcmeManager with external account binding', () => {
  let pebble: Pebble;
  let work: string;

  before(async () => {
    pebble = await startPebble({ eabKeys: { [KEY_ID]: HMAC_KEY } });
    work = await mkdtemp(join(tmpdir(), 'ftpsd-acme-eab-'));
  });
  after(async () => {
    await pebble?.stop();
    await rm(work, { recursive: true, force: true });
  });

  function manager(dir: string, eab: NonNullable<ConfigInput['acme']>['eab']) {
    const capture = logCapture();
    const config = configSchema.parse({ acme: { ...acmeTestSettings(pebble, join(work, dir)), eab } });
    return { manager: new AcmeManager({ config, certStore: new CertStore(), log: createLogger('debug', capture.stream) }), capture };
  }

  it('registers with acme.eab and is issued a certificate', async () => {
    const { manager: m, capture } = manager('with', { keyId: KEY_ID, hmacKey: HMAC_KEY });
    const { certificate } = await m.renewNow(true);
    assert.ok(chainVerifies(certificate.certPem, pebble.rootPem));
    assert.ok(!JSON.stringify(capture.records).includes(HMAC_KEY), 'the HMAC key never reaches the log');
  });

  it('reports the CA refusing an account without binding', async () => {
    const { manager: m } = manager('without', {});
    await assert.rejects(m.renewNow(true), (err: unknown) => err instanceof AcmeError && err.reason === 'ca_rejected' && /externalAccountBinding/.test(err.message));
  });
});
