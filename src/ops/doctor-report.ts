export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  /** Short name of what was checked, e.g. "passive ports". */
  check: string;
  status: CheckStatus;
  /** What was found, one line. */
  detail: string;
  /** What to do about a warning or failure. */
  fix?: string;
}

/** Limits of the checks themselves, in one place. */
export const DOCTOR_DEFAULTS = Object.freeze({
  /** At most this many ports of the passive range are bound for a moment to see whether they are free. */
  maxPortsProbed: 1_000,
  /** A certificate expiring sooner than this is a warning. */
  certificateWarnDays: 14,
  /** Bound for each network step of the loopback session. */
  stepTimeoutMs: 10_000,
});

const LABEL: Record<CheckStatus, string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL', skip: 'SKIP' };

export function formatReport(results: readonly CheckResult[]): string {
  const width = Math.max(...results.map((r) => r.check.length), 10);
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${LABEL[r.status]}  ${r.check.padEnd(width)}  ${r.detail}`);
    if (r.fix !== undefined && (r.status === 'fail' || r.status === 'warn')) lines.push(`      ${' '.repeat(width)}  fix: ${r.fix}`);
  }
  const failed = results.filter((r) => r.status === 'fail').length;
  const warned = results.filter((r) => r.status === 'warn').length;
  lines.push('');
  lines.push(failed === 0 ? `OK: no failures${warned > 0 ? `, ${warned} warning(s)` : ''}` : `FAILED: ${failed} check(s) failed${warned > 0 ? `, ${warned} warning(s)` : ''}`);
  return `${lines.join('\n')}\n`;
}

export function hasFailure(results: readonly CheckResult[]): boolean {
  return results.some((r) => r.status === 'fail');
}
