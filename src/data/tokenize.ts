// Tokenisation and labels of a training conversation (method.md §2.5; upstream
// lvr_sft_dataset_packed.py::IterableSupervisedDatasetLVR.__iter__). Pieces are tokenised SEPARATELY (no
// BOS/EOS) and concatenated:
//   S = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"                   labels -100
//   per (user, assistant) pair:
//   U = "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n"                labels -100
//   R = assistant + "<|im_end|>\n"                                                         labels = ids
// Every `<|image_pad|>` of a user piece becomes Nt = t*h*w/merge^2 copies (the processor's expansion); added
// tokens are split off atomically, so expanding after tokenising gives the same ids as tokenising the expanded
// text. Images are assigned to pads in order across the whole conversation (upstream restarts the count in every
// user turn that has a pad, which only differs for multi-turn multi-image records, where its forward fails).
import type { Tokenizer } from '../model/tokenizer';
import { IGNORE_INDEX, TOKENS, TRAIN_SYSTEM_MESSAGE } from './constants';
import type { ChatTurn } from './lvr_text';
import { SampleSkip } from './skips';

export interface SpecialIds {
  imStart: number;
  imEnd: number;
  visionStart: number;
  visionEnd: number;
  imagePad: number;
  lvrStart: number;
  lvr: number;
  lvrLatentEnd: number;
  lvrEnd: number;
  /** `<|endoftext|>`, the pad id of Qwen's tokenizer (only for padded layouts) */
  pad: number;
}

/** Ids of the tokens the pipeline needs, read from the tokenizer; a missing one is an error naming it. */
export function resolveSpecialIds(tok: Tokenizer): SpecialIds {
  const out: Partial<SpecialIds> = {};
  for (const [k, t] of Object.entries(TOKENS) as Array<[keyof SpecialIds, string]>) {
    const id = tok.tokenToId(t);
    if (id === undefined) throw new Error(`the tokenizer has no ${t} token (a V-Reflection training tokenizer needs it)`);
    out[k] = id;
  }
  return out as SpecialIds;
}

/** Token ids and labels before the image pads are expanded (one pad per image). */
export interface Tokenized {
  ids: number[];
  labels: number[];
}

const systemCache = new WeakMap<Tokenizer, Map<string, number[]>>();

async function systemIds(tok: Tokenizer, system: string): Promise<number[]> {
  let m = systemCache.get(tok);
  if (!m) systemCache.set(tok, (m = new Map()));
  let ids = m.get(system);
  if (!ids) m.set(system, (ids = await tok.encode(`${TOKENS.imStart}system\n${system}${TOKENS.imEnd}\n`)));
  return ids;
}

/** Tokenises the transformed turns (user/assistant pairs) as upstream does. */
export async function tokenizeConversation(tok: Tokenizer, turns: readonly ChatTurn[], system = TRAIN_SYSTEM_MESSAGE): Promise<Tokenized> {
  const ids = [...(await systemIds(tok, system))];
  const labels: number[] = new Array(ids.length).fill(IGNORE_INDEX);
  for (let j = 0; j + 1 < turns.length; j += 2) {
    const u = turns[j], a = turns[j + 1];
    const prompt = await tok.encode(`${TOKENS.imStart}${u.role}\n${u.content}${TOKENS.imEnd}\n${TOKENS.imStart}${a.role}\n`);
    const response = await tok.encode(`${a.content}${TOKENS.imEnd}\n`);
    for (const id of prompt) {
      ids.push(id);
      labels.push(IGNORE_INDEX);
    }
    for (const id of response) {
      ids.push(id);
      labels.push(id);
    }
  }
  return { ids, labels };
}

/**
 * Expands the i-th `<|image_pad|>` into counts[i] copies (labels stay -100). A pad count different from the
 * image count, or a pad in a supervised (assistant) piece, is a counted skip.
 */
export function expandImagePads(t: Tokenized, padId: number, counts: readonly number[]): { ids: Int32Array; labels: Int32Array } {
  let pads = 0;
  for (let i = 0; i < t.ids.length; i++) {
    if (t.ids[i] !== padId) continue;
    if (t.labels[i] !== IGNORE_INDEX) throw new SampleSkip('image_placeholder_mismatch', 'an <image> placeholder in an assistant turn');
    pads++;
  }
  if (pads !== counts.length)
    throw new SampleSkip('image_placeholder_mismatch', `${pads} <image> placeholder(s) for ${counts.length} image(s)`);
  const total = t.ids.length - pads + counts.reduce((a, b) => a + b, 0);
  const ids = new Int32Array(total), labels = new Int32Array(total);
  let o = 0, img = 0;
  for (let i = 0; i < t.ids.length; i++) {
    if (t.ids[i] === padId) {
      ids.fill(padId, o, o + counts[img]);
      labels.fill(IGNORE_INDEX, o, o + counts[img]);
      o += counts[img++];
    } else {
      ids[o] = t.ids[i];
      labels[o++] = t.labels[i];
    }
  }
  return { ids, labels };
}

/** Number of `<|image_pad|>` ids (= images the text asks for, before expansion). */
export function countId(ids: ArrayLike<number>, id: number): number {
  let n = 0;
  for (let i = 0; i < ids.length; i++) if (ids[i] === id) n++;
  return n;
}

/** Positions of every occurrence of `id` (the `<|lvr|>` slots). */
export function positionsOf(ids: ArrayLike<number>, id: number): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < ids.length; i++) if (ids[i] === id) out.push(i);
  return Int32Array.from(out);
}
