/** Parses one command line into verb and argument (RFC 959 §5.3). Pure. */
export type ParsedCommand =
  | { ok: true; verb: string; arg: string; raw: string }
  | { ok: false; problem: 'empty' | 'invalid_utf8' | 'bad_verb' };

const utf8 = new TextDecoder('utf-8', { fatal: true });
const VERB = /^[A-Za-z]{3,4}$/;

export function parseCommandLine(bytes: Buffer): ParsedCommand {
  let text: string;
  try {
    // RFC 2640: pathnames are UTF-8. Invalid sequences are refused rather than guessed at, so a name is never
    // silently mangled into replacement characters.
    text = utf8.decode(bytes);
  } catch {
    return { ok: false, problem: 'invalid_utf8' };
  }
  if (text.trim() === '') return { ok: false, problem: 'empty' };
  const space = text.indexOf(' ');
  const verbText = space === -1 ? text : text.slice(0, space);
  if (!VERB.test(verbText)) return { ok: false, problem: 'bad_verb' };
  // The argument is kept verbatim after the single separating space: file names may start or end with spaces and
  // may contain quotes (RFC 959 leaves quoting to replies only).
  const arg = space === -1 ? '' : text.slice(space + 1);
  return { ok: true, verb: verbText.toUpperCase(), arg, raw: text };
}

/** What is safe to log of a command line: the PASS argument never appears. */
export function redactCommand(verb: string, arg: string): string {
  if (verb === 'PASS' || verb === 'ACCT') return `${verb} [redacted]`;
  return arg === '' ? verb : `${verb} ${arg.length > 512 ? `${arg.slice(0, 512)}…` : arg}`;
}
