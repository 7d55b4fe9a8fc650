// A byte-level BPE trainer small enough to read (Sennrich et al. 2016, GPT-2's byte-level variant), used to give
// the demo's tiny model a Qwen2-style tokenizer whose merges cover the demo's own sentences: each word of the
// corpus ends up as one token, any other text still encodes through the 256 byte symbols.
//
// Determinism: pair counts are exact and ties go to the pair whose merged string sorts first, so the same
// corpus always gives the same merges. Replaying the merges in rank order on a corpus word reproduces the
// training segmentation, which is what HF `tokenizers` does at encode time.

/** Qwen2's pre-tokenizer pattern (model.md §7.3) in JavaScript syntax: `(?i:'s|...)` spelled out per letter. */
export const QWEN_SPLIT_JS =
  /'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

/** The same pattern as tokenizer.json spells it (Rust regex syntax). */
export const QWEN_SPLIT_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to U+0100 onwards. */
export function byteToUnicode(): string[] {
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = new Array(256);
  let next = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(keep(b) ? b : 256 + next++);
  return out;
}

/** Pre-tokenized pieces of `text`, each as byte-level symbols (one per byte). */
export function byteLevelWords(text: string): string[][] {
  const table = byteToUnicode();
  const words: string[][] = [];
  for (const m of text.normalize('NFC').matchAll(QWEN_SPLIT_JS)) words.push([...Buffer.from(m[0], 'utf8')].map((b) => table[b]));
  return words;
}

interface Pair {
  a: string;
  b: string;
  n: number;
}

/** More frequent first; ties go to the merged string that sorts first, then to the shorter left part. */
function better(p: Pair, q: Pair): boolean {
  if (p.n !== q.n) return p.n > q.n;
  const ps = p.a + p.b, qs = q.a + q.b;
  return ps !== qs ? ps < qs : p.a < q.a;
}

export interface BpeModel {
  /** token string -> id; the 256 byte symbols first (in byte order), then one entry per merge */
  vocab: Map<string, number>;
  merges: [string, string][];
}

/**
 * Trains merges on `texts` until no pair occurs at least `minCount` times or `maxMerges` is reached.
 * Quadratic in the corpus size, which is fine for the few kilobytes of the demo corpus.
 */
export function trainBpe(texts: readonly string[], opts: { minCount?: number; maxMerges?: number } = {}): BpeModel {
  const minCount = opts.minCount ?? 2;
  const maxMerges = opts.maxMerges ?? 10000;
  // distinct words with their counts, as symbol lists
  const counts = new Map<string, { symbols: string[]; n: number }>();
  for (const t of texts)
    for (const w of byteLevelWords(t)) {
      const key = w.join('\u0000');
      const e = counts.get(key);
      if (e) e.n++;
      else counts.set(key, { symbols: w, n: 1 });
    }
  const words = [...counts.values()];
  const vocab = new Map<string, number>();
  for (const s of byteToUnicode()) vocab.set(s, vocab.size);
  const merges: [string, string][] = [];

  while (merges.length < maxMerges) {
    const pairs = new Map<string, Pair>();
    for (const w of words)
      for (let i = 0; i + 1 < w.symbols.length; i++) {
        const a = w.symbols[i], b = w.symbols[i + 1];
        const key = a + '\u0000' + b;
        const p = pairs.get(key);
        if (p) p.n += w.n;
        else pairs.set(key, { a, b, n: w.n });
      }
    let best: Pair | undefined;
    for (const p of pairs.values()) if (p.n >= minCount && (!best || better(p, best))) best = p;
    if (!best) break;
    const merged = best.a + best.b;
    // two merge paths can spell the same string ("ab"+"c", "a"+"bc"): one id, both merges recorded
    if (!vocab.has(merged)) vocab.set(merged, vocab.size);
    merges.push([best.a, best.b]);
    for (const w of words) {
      const s = w.symbols;
      const out: string[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === best.a && s[i + 1] === best.b) {
          out.push(merged);
          i++;
        } else out.push(s[i]);
      }
      w.symbols = out;
    }
  }
  return { vocab, merges };
}
