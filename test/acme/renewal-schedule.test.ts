import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_TIMER_MS, renewalWindow, retryDelay, timerDelay } from '../../src/acme/renewal-schedule.js';

const DAY = 86_400_000;
const from = new Date('2026-01-01T00:00:00Z');
const cert = (days: number) => ({ validFrom: from.toUTCString(), validTo: new Date(from.getTime() + days * DAY).toUTCString() });

describe('renewalWindow', () => {
  it('renews a 90-day certificate 30 days before expiry by default', () => {
    const w = renewalWindow(cert(90), { renewBeforeDays: 30, renewBeforeFraction: 0 });
    assert.equal(new Date(w.renewAt).toISOString(), '2026-03-02T00:00:00.000Z');
    assert.equal(w.clamped, false);
  });

  it('takes the earlier of the days rule and the fraction rule', () => {
    // 90 days: half the lifetime (45 days) is earlier than 30 days before expiry.
    assert.equal(renewalWindow(cert(90), { renewBeforeDays: 30, renewBeforeFraction: 0.5 }).renewAt, from.getTime() + 45 * DAY);
    // 90 days: a tenth (9 days) is later, so the days rule wins.
    assert.equal(renewalWindow(cert(90), { renewBeforeDays: 30, renewBeforeFraction: 0.1 }).renewAt, from.getTime() + 60 * DAY);
  });

  it('does not renew a fresh short-lived certificate at once when the window exceeds its lifetime', () => {
    const w = renewalWindow(cert(6), { renewBeforeDays: 30, renewBeforeFraction: 0 });
    assert.equal(w.clamped, true);
    assert.equal(w.renewAt, from.getTime() + 4 * DAY);
  });
});

describe('timerDelay', () => {
  it('never exceeds what setTimeout can hold, so a renewal 60 days out does not fire at once', () => {
    const now = Date.now();
    assert.equal(timerDelay(now + 60 * DAY, now, Number.MAX_SAFE_INTEGER), MAX_TIMER_MS);
    assert.equal(timerDelay(now + 60 * DAY, now, 12 * 3_600_000), 12 * 3_600_000);
    assert.equal(timerDelay(now + 1_000, now, 12 * 3_600_000), 1_000);
    assert.equal(timerDelay(now - 1_000, now, 12 * 3_600_000), 0);
  });
});

describe('retryDelay', () => {
  it('backs off exponentially between the minimum and the maximum, with jitter', () => {
    const min = 60_000;
    const max = 6 * 3_600_000;
    assert.equal(retryDelay(1, min, max, () => 0), min);
    assert.equal(retryDelay(1, min, max, () => 1), min);
    assert.equal(retryDelay(3, min, max, () => 1), 4 * min);
    assert.equal(retryDelay(3, min, max, () => 0), 2 * min);
    assert.equal(retryDelay(100, min, max, () => 1), max);
    assert.equal(retryDelay(100, min, max, () => 0), max / 2);
    const samples = new Set(Array.from({ length: 20 }, () => retryDelay(5, min, max)));
    assert.ok(samples.size > 1, 'jitter spreads retries');
  });
});
