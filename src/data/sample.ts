// One LLaVA record -> one training sample (method.md §2-§4): the record checks, the LVR text transformation,
// tokens and labels, the images, the box token indices and the `<|lvr|>` slot positions.
//
// Checks run cheapest first, so a record with several faults is counted once, under the first of:
// malformed_record -> invalid_box / box_out_of_range / box_inverted -> lvr_box_mismatch ->
// image_placeholder_mismatch -> missing_image -> undecodable_image -> too_long.
// Upstream order differs (images first) but it skips the same records, except: upstream trains a record whose
// images are only partly missing when its placeholders still match the images found; we skip any record with a
// missing image (a partly missing record usually fails in upstream's processor anyway).
import type { Tokenizer } from '../model/tokenizer';
import { Box, boxTokenIndices, parseBoxes } from './boxes';
import { mapImagePath } from './image_path';
import type { ImageLoader, TrainImage } from './images';
import { transformConversation } from './lvr_text';
import { parseRecord } from './records';
import { RecordRef, SampleSkip } from './skips';
import { countId, expandImagePads, positionsOf, SpecialIds, tokenizeConversation } from './tokenize';

export interface TrainSample {
  ref: RecordRef;
  /** token ids, image pads expanded */
  inputIds: Int32Array;
  /** labels aligned with inputIds (not shifted): -100 on the system and user pieces, the ids on responses */
  labels: Int32Array;
  images: TrainImage[];
  /** merged (LLM-visible) tokens of each image: t*h*w / merge^2 */
  imageTokens: number[];
  /** per box, indices into the FIRST image's merged tokens (row-major), never empty */
  boxTokens: Int32Array[];
  /** positions of the `<|lvr|>` ids in inputIds; box i owns slots [i*latentCount, (i+1)*latentCount) */
  lvrSlots: Int32Array;
}

export interface SampleContext {
  tokenizer: Tokenizer;
  ids: SpecialIds;
  /** `<|lvr|>` slots per `<lvr>` (8) */
  latentCount: number;
  /** spatial merge size of the vision tower (2) */
  merge: number;
  imageFolder: string;
  loadImage: ImageLoader;
  /** samples longer than this are skipped (too_long); the packing limit when packing */
  maxTokens?: number;
  /** file existence test of the path mapping (tests replace it) */
  exists?: (p: string) => boolean;
}

export const sampleLength = (s: TrainSample): number => s.inputIds.length;

export async function buildSample(raw: unknown, ref: RecordRef, ctx: SampleContext): Promise<TrainSample> {
  const rec = parseRecord(raw);
  const boxes: Box[] = parseBoxes(rec.bboxes);
  const turns = transformConversation(rec.conversations, ctx.latentCount);
  const tok = await tokenizeConversation(ctx.tokenizer, turns);

  const nLvr = countId(tok.ids, ctx.ids.lvr);
  if (nLvr !== ctx.latentCount * boxes.length)
    throw new SampleSkip('lvr_box_mismatch', `${nLvr} <|lvr|> slots for ${boxes.length} box(es) x ${ctx.latentCount}`);
  const nPads = countId(tok.ids, ctx.ids.imagePad);
  if (nPads !== rec.images.length)
    throw new SampleSkip('image_placeholder_mismatch', `${nPads} <image> placeholder(s) for ${rec.images.length} image(s)`);

  const images: TrainImage[] = [];
  for (const entry of rec.images) {
    const file = mapImagePath(entry, ctx.imageFolder, rec.dataset, ctx.exists);
    if (file === null) throw new SampleSkip('missing_image', `${entry} (not found under ${ctx.imageFolder})`);
    images.push(await ctx.loadImage(file));
  }
  const m2 = ctx.merge * ctx.merge;
  const imageTokens = images.map((im) => (im.grid[0] * im.grid[1] * im.grid[2]) / m2);

  const { ids, labels } = expandImagePads(tok, ctx.ids.imagePad, imageTokens);
  if (ctx.maxTokens !== undefined && ids.length > ctx.maxTokens)
    throw new SampleSkip('too_long', `${ids.length} tokens > ${ctx.maxTokens}`);

  return {
    ref,
    inputIds: ids,
    labels,
    images,
    imageTokens,
    boxTokens: boxes.map((b) => boxTokenIndices(b, images[0].grid, ctx.merge)),
    lvrSlots: positionsOf(ids, ctx.ids.lvr),
  };
}
