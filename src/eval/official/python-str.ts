// Python 3 `str` semantics the official scorers rely on, where JavaScript differs: what counts as whitespace
// for str.split() / str.strip() / the re module's \s (str.isspace(): \x1c-\x1f and \x85 are whitespace, \ufeff
// is not; JavaScript's \s and trim() say the opposite), and len() counting code points, not UTF-16 units.
// str.lower() needs no helper: Python and String.prototype.toLowerCase both apply the full Unicode lower-case
// mapping (one to many, e.g. U+0130) with the final-sigma rule.

/** The characters for which Python's str.isspace() is true (checked against CPython 3 over all code points). */
export const PY_WHITESPACE = '\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

const RUN = new RegExp(`[${PY_WHITESPACE}]+`, 'g');
const EDGES = new RegExp(`^[${PY_WHITESPACE}]+|[${PY_WHITESPACE}]+$`, 'g');

/** `s.split()` without arguments: runs of whitespace separate, no empty strings. */
export function pySplit(s: string): string[] {
  return s.split(RUN).filter((w) => w !== '');
}

/** `s.strip()` without arguments. */
export function pyStrip(s: string): string {
  return s.replace(EDGES, '');
}

/** `len(s)`: code points. */
export function pyLen(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** `s.replace(old, new)`: every non-overlapping occurrence, left to right. */
export function pyReplaceAll(s: string, old: string, by: string): string {
  return s.split(old).join(by);
}
