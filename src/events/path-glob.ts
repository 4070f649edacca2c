// Path globs of event rules, on virtual paths: `*` matches within one path segment, `**` across segments, `?` one
// character of a segment; everything else is literal. "/inbox/**" matches every path below /inbox, "/inbox/*.csv"
// the CSV files directly in it.

const cache = new Map<string, RegExp>();

export function globToRegExp(glob: string): RegExp {
  let re = cache.get(glob);
  if (re !== undefined) return re;
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      // "/**" at the end or "/**/" in the middle also matches nothing at all between the slashes.
      if (glob[i + 2] === '/') {
        out += '(?:.*/)?';
        i += 2;
      } else {
        out += '.*';
        i += 1;
      }
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  re = new RegExp(`^${out}$`, 'u');
  if (cache.size > 1000) cache.clear();
  cache.set(glob, re);
  return re;
}

export function matchesGlob(glob: string, path: string): boolean {
  return globToRegExp(glob).test(path);
}
