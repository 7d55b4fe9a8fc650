// The checkpoint's tokenizer.json through HF `tokenizers` (Rust, exact HF semantics; engineering.md §6).
// Encoding is asynchronous (the binding offers no synchronous encode); decoding is synchronous: ids become
// token strings and go through the tokenizer's own decoder, which is what Rust's decode does.
import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer as HfTokenizer } from 'tokenizers';

import type { ModelConfig } from './config';
import { isObject } from './json_file';

/** V-Reflection's added tokens (method.md §2.1), in the order they were added. */
export const LVR_TOKENS = ['<|lvr_start|>', '<|lvr|>', '<|lvr_latent_end|>', '<|lvr_end|>'] as const;

export interface Tokenizer {
  /** Token ids of `text`; added/special tokens in the text are always recognised (HF default). No BOS/EOS. */
  encode(text: string, opts?: { special?: boolean }): Promise<number[]>;
  /** Text of `ids`; special tokens are kept unless skipSpecial. Ids the tokenizer does not know are dropped. */
  decode(ids: ArrayLike<number>, opts?: { skipSpecial?: boolean }): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  /** number of ids the tokenizer can produce (vocabulary + added tokens) */
  size: number;
  /** ids of the added tokens marked special */
  specialIds: ReadonlySet<number>;
}

interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
}

class HfBackedTokenizer implements Tokenizer {
  private readonly special = new Set<number>();
  private readonly decoder;

  constructor(private readonly tk: HfTokenizer, added: AddedTokenJson[]) {
    for (const a of added) if (a.special) this.special.add(a.id);
    this.decoder = tk.getDecoder();
  }

  get size(): number {
    return this.tk.getVocabSize(true);
  }

  get specialIds(): ReadonlySet<number> {
    return this.special;
  }

  /** Adds tokens as special added tokens (HF add_special_tokens); returns their ids. */
  addSpecial(tokens: readonly string[]): number[] {
    this.tk.addSpecialTokens([...tokens]);
    return tokens.map((t) => {
      const id = this.tk.tokenToId(t);
      if (id === null || id === undefined) throw new Error(`tokenizer: adding ${t} failed`);
      this.special.add(id);
      return id;
    });
  }

  async encode(text: string, opts?: { special?: boolean }): Promise<number[]> {
    if (opts && opts.special === false) throw new Error('tokenizer: encoding with special tokens treated as plain text is not supported');
    const enc = await this.tk.encode(text, null, { addSpecialTokens: false });
    return enc.getIds();
  }

  decode(ids: ArrayLike<number>, opts?: { skipSpecial?: boolean }): string {
    const tokens: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (opts?.skipSpecial && this.special.has(id)) continue;
      const t = this.tk.idToToken(id);
      if (t !== null && t !== undefined) tokens.push(t);
    }
    return this.decoder ? this.decoder.decode(tokens) : tokens.join(' ');
  }

  tokenToId(token: string): number | undefined {
    return this.tk.tokenToId(token) ?? undefined;
  }

  idToToken(id: number): string | undefined {
    return this.tk.idToToken(id) ?? undefined;
  }
}

function addedTokensOf(json: unknown, where: string): AddedTokenJson[] {
  if (!isObject(json)) throw new Error(`${where} is not a tokenizer JSON object`);
  const added = json.added_tokens ?? [];
  if (!Array.isArray(added)) throw new Error(`${where}: added_tokens is not a list`);
  return added as AddedTokenJson[];
}

/** Builds a tokenizer from tokenizer.json text, optionally adding special tokens (used for test stand-ins). */
export function tokenizerFromJson(json: string, opts: { addSpecial?: readonly string[]; where?: string } = {}): Tokenizer {
  const where = opts.where ?? 'tokenizer.json';
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (e) {
    throw new Error(`${where} is not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  let tk: HfTokenizer;
  try {
    tk = HfTokenizer.fromString(json);
  } catch (e) {
    throw new Error(`${where}: tokenizers cannot load it (${String((e as Error).message ?? e).split('\n')[0]})`);
  }
  const t = new HfBackedTokenizer(tk, addedTokensOf(parsed, where));
  if (opts.addSpecial?.length) t.addSpecial(opts.addSpecial);
  return t;
}

/**
 * Entries of tokenizer_config.json's added_tokens_decoder that tokenizer.json lacks are added, as transformers
 * does when loading; each must land on the id the config gives it.
 */
function applyTokenizerConfig(t: HfBackedTokenizer, dir: string): void {
  const file = path.join(dir, 'tokenizer_config.json');
  if (!fs.existsSync(file)) return;
  let cfg: unknown;
  try {
    cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (!isObject(cfg) || !isObject(cfg.added_tokens_decoder)) return;
  const entries = Object.entries(cfg.added_tokens_decoder)
    .map(([id, v]) => ({ id: Number(id), v }))
    .sort((a, b) => a.id - b.id);
  for (const { id, v } of entries) {
    if (!isObject(v) || typeof v.content !== 'string') continue;
    if (t.tokenToId(v.content) !== undefined) continue;
    if (!v.special) throw new Error(`${file}: added token ${v.content} is missing from tokenizer.json (only special ones can be restored)`);
    const [got] = t.addSpecial([v.content]);
    if (got !== id) throw new Error(`${file}: added token ${v.content} should have id ${id}, but adding it to tokenizer.json gave ${got}`);
  }
}

/** Checks the config's token ids against the tokenizer (ids are read from the tokenizer, never assumed). */
export function checkTokenIds(t: Tokenizer, cfg: ModelConfig): void {
  const pairs: Array<[string, number | undefined, string]> = [
    ['<|image_pad|>', cfg.tokens.image, 'image_token_id'],
    ['<|video_pad|>', cfg.tokens.video, 'video_token_id'],
    ['<|vision_start|>', cfg.tokens.visionStart, 'vision_start_token_id'],
    ['<|vision_end|>', cfg.tokens.visionEnd, 'vision_end_token_id'],
    ['<|lvr_start|>', cfg.lvr.start, 'lvr_start_id'],
    ['<|lvr|>', cfg.lvr.lvr, 'lvr_id'],
    ['<|lvr_latent_end|>', cfg.lvr.latentEnd, 'lvr_latent_end_id'],
    ['<|lvr_end|>', cfg.lvr.end, 'lvr_end_id'],
  ];
  for (const [token, id, key] of pairs) {
    if (id === undefined) continue;
    const got = t.tokenToId(token);
    if (got === undefined) throw new Error(`config.json has ${key} ${id}, but the tokenizer has no ${token}`);
    if (got !== id) throw new Error(`config.json has ${key} ${id}, but the tokenizer maps ${token} to ${got}`);
  }
  for (const token of ['<|im_start|>', '<|im_end|>'])
    if (t.tokenToId(token) === undefined) throw new Error(`the tokenizer has no ${token} (not a Qwen chat tokenizer)`);
}

/** Loads `<dir>/tokenizer.json` (+ tokenizer_config.json's extra added tokens); checks ids against cfg if given. */
export async function loadTokenizer(dir: string, cfg?: ModelConfig): Promise<Tokenizer> {
  const file = path.join(dir, 'tokenizer.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const t = tokenizerFromJson(text, { where: file }) as HfBackedTokenizer;
  applyTokenizerConfig(t, dir);
  if (cfg) checkTokenIds(t, cfg);
  return t;
}
