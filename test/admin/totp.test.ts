import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { base32Decode, base32Encode, hotp, newTotpSecret, otpauthUri, totpCode, verifyTotp } from '../../src/admin/auth/totp.js';

// TOTP (RFC 6238) on HOTP (RFC 4226), checked against the RFCs' own test vectors; no sockets.

// RFC 4226 appendix D and RFC 6238 appendix B use the ASCII secret "12345678901234567890".
const SECRET = Buffer.from('12345678901234567890');

describe('TOTP', () => {
  it('computes the HOTP values of RFC 4226 appendix D', () => {
    const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
    expected.forEach((code, counter) => assert.equal(hotp(SECRET, counter), code, `counter ${counter}`));
  });

  it('computes the SHA-1 TOTP values of RFC 6238 appendix B (last six digits)', () => {
    const b32 = base32Encode(SECRET);
    const vectors: Array<[number, string]> = [
      [59, '94287082'],
      [1111111109, '07081804'],
      [1111111111, '14050471'],
      [1234567890, '89005924'],
      [2000000000, '69279037'],
      [20000000000, '65353130'],
    ];
    for (const [seconds, code] of vectors) assert.equal(totpCode(b32, seconds * 1000), code.slice(-6), `T=${seconds}`);
  });

  it('accepts the code of the step before and after, no further, and says which step it was', () => {
    const secret = newTotpSecret();
    const now = 1_700_000_015_000;
    const step = Math.floor(now / 30_000);
    assert.equal(verifyTotp(secret, totpCode(secret, now), now), step);
    assert.equal(verifyTotp(secret, totpCode(secret, now - 30_000), now), step - 1);
    assert.equal(verifyTotp(secret, totpCode(secret, now + 30_000), now), step + 1);
    const far = totpCode(secret, now - 90_000);
    if (![-1, 0, 1].some((d) => totpCode(secret, now + d * 30_000) === far)) assert.equal(verifyTotp(secret, far, now), null);
    assert.equal(verifyTotp(secret, 'abcdef', now), null);
    assert.equal(verifyTotp(secret, '12345', now), null);
  });

  it('round-trips base32 and builds the otpauth URI apps read', () => {
    const secret = newTotpSecret();
    assert.match(secret, /^[A-Z2-7]{32}$/, '20 bytes');
    assert.equal(base32Encode(base32Decode(secret)), secret);
    assert.equal(base32Encode(Buffer.from('foobar')), 'MZXW6YTBOI', 'RFC 4648 test vector');
    assert.equal(otpauthUri('JBSWY3DPEHPK3PXP', 'ops'), 'otpauth://totp/ftpsd%3Aops?secret=JBSWY3DPEHPK3PXP&issuer=ftpsd&algorithm=SHA1&digits=6&period=30');
  });
});
