/** FTP replies (RFC 959 §4.2) and their wire format. Pure. */
export interface Reply {
  code: number;
  /** One line, or several for a multi-line reply. */
  text: string | readonly string[];
}

export function reply(code: number, text: string | readonly string[]): Reply {
  return { code, text };
}

/** Line breaks inside a reply line would let a file name forge a reply; they are replaced. */
function clean(line: string): string {
  return line.replace(/[\r\n]/g, ' ');
}

/**
 * Multi-line replies start with "code-", end with "code " and their inner lines are indented with a space so a line
 * that happens to begin with digits cannot be read as the end (RFC 959 §4.2).
 */
export function formatReply({ code, text }: Reply): string {
  const lines = typeof text === 'string' ? [text] : text;
  if (lines.length <= 1) return `${code} ${clean(lines[0] ?? '')}\r\n`;
  const first = `${code}-${clean(lines[0]!)}\r\n`;
  const middle = lines.slice(1, -1).map((l) => ` ${clean(l)}\r\n`).join('');
  const last = `${code} ${clean(lines[lines.length - 1]!)}\r\n`;
  return first + middle + last;
}

/** RFC 959 §7: a double quote inside a quoted pathname is doubled. */
export function quotePath(path: string): string {
  return `"${path.replace(/"/g, '""')}"`;
}
