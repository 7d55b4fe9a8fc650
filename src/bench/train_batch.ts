// The micro-batch every benchmark step trains on: synthetic stage-1 samples laid out exactly as the data pipeline
// lays out a real record (method.md §2.5): system piece, user piece with one image's pads and a question,
// response = <|lvr_start|> + K x <|lvr|> + <|lvr_end|> + answer + <|im_end|>\n, labels only on the response, one
// box on the first image. Text ids are seeded random ids (speed does not depend on which ids), pixel values are
// seeded random values in the normalised range. The samples go through the pipeline's own collate(), so targets,
// M-RoPE positions and box rows are what training computes. PyTorch gets the same batch through a file.
import * as fs from 'fs';
import * as path from 'path';

import { collate, TrainBatch } from '../data/batch';
import { boxTokenIndices } from '../data/boxes';
import { IGNORE_INDEX } from '../data/constants';
import type { TrainSample } from '../data/sample';
import type { SpecialIds } from '../data/tokenize';
import { QWEN7B } from './model_shape';
import { mulberry32 } from './random_weights';
import { textIdLimit, trainSpecialIds } from './train_model';

export interface TrainBatchSpec {
  /** samples per micro-batch (all of the same length, so PyTorch can stack them without padding) */
  samples: number;
  tokensPerSample: number;
  /** side of the square image in pixels (a multiple of 28: no resize) */
  imageSize: number;
  /** response text tokens after the latent block (before <|im_end|>\n) */
  answerTokens: number;
  latentCount: number;
  /** the box on the image, normalised [x0, y0, x1, y1] */
  box: [number, number, number, number];
  vocab: number;
  seed: number;
  /** special ids and the text-id bound; default: those of the benchmark checkpoint (trainSpecialIds(vocab)) */
  ids?: TrainBatchIds;
}

/** The ids a synthetic sample uses (the data side's special ids but the pad); text ids are drawn from [0, textLimit), below every special id. */
export type TrainBatchIds = Omit<SpecialIds, 'pad'> & { textLimit: number };

export function batchIds(spec: TrainBatchSpec): TrainBatchIds {
  return spec.ids ?? { ...trainSpecialIds(spec.vocab), textLimit: textIdLimit(spec.vocab) };
}

export const DEFAULT_BATCH_SPEC: Omit<TrainBatchSpec, 'vocab'> = {
  samples: 1,
  tokensPerSample: 1024,
  imageSize: 672,
  answerTokens: 128,
  latentCount: 8,
  box: [0.25, 0.25, 0.75, 0.75],
  seed: 7,
};

/** Tokens of a sample besides the image pads, the question and the answer (see the layout in sampleLayout). */
export const fixedTokens = (latentCount: number): number => 11 + 3 + 2 + 5 + (latentCount + 2) + 2;

export interface SampleLayout {
  imageTokens: number;
  questionTokens: number;
  grid: [number, number, number];
}

export function sampleLayout(spec: TrainBatchSpec): SampleLayout {
  const unit = QWEN7B.patch * QWEN7B.merge;
  if (!Number.isInteger(spec.imageSize) || spec.imageSize < unit || spec.imageSize % unit)
    throw new Error(`image size must be a positive multiple of ${unit} px, got ${spec.imageSize}`);
  if (!Number.isInteger(spec.samples) || spec.samples < 1 || spec.samples > 16) throw new Error(`samples per micro-batch must be an integer in [1, 16], got ${spec.samples}`);
  if (!Number.isInteger(spec.answerTokens) || spec.answerTokens < 0) throw new Error(`answer tokens must be a non-negative integer, got ${spec.answerTokens}`);
  if (!Number.isInteger(spec.latentCount) || spec.latentCount < 1) throw new Error(`latent count must be a positive integer, got ${spec.latentCount}`);
  const side = spec.imageSize / QWEN7B.patch;
  const imageTokens = (side * side) / (QWEN7B.merge * QWEN7B.merge);
  const questionTokens = spec.tokensPerSample - imageTokens - spec.answerTokens - fixedTokens(spec.latentCount);
  if (!Number.isInteger(spec.tokensPerSample) || questionTokens < 1)
    throw new Error(
      `${spec.tokensPerSample} tokens per sample cannot hold a ${spec.imageSize}px image (${imageTokens} tokens), ` +
        `${spec.answerTokens} answer tokens and the ${fixedTokens(spec.latentCount)} template tokens`,
    );
  return { imageTokens, questionTokens, grid: [1, side, side] };
}

/** One synthetic sample (pads already expanded), drawn from `rand`. */
function buildSample(spec: TrainBatchSpec, layout: SampleLayout, index: number, rand: () => number): TrainSample {
  const ids = batchIds(spec);
  const limit = ids.textLimit;
  const out: number[] = [];
  const labels: number[] = [];
  const text = (n: number, supervised: boolean) => {
    for (let i = 0; i < n; i++) push(Math.floor(rand() * limit), supervised);
  };
  const push = (id: number, supervised: boolean) => {
    out.push(id);
    labels.push(supervised ? id : IGNORE_INDEX);
  };
  // S: <|im_start|>system\nYou are a helpful assistant.<|im_end|>\n
  push(ids.imStart, false), text(8, false), push(ids.imEnd, false), text(1, false);
  // U: <|im_start|>user\n<|vision_start|><|image_pad|>*N<|vision_end|>question<|im_end|>\n<|im_start|>assistant\n
  push(ids.imStart, false), text(2, false), push(ids.visionStart, false);
  for (let i = 0; i < layout.imageTokens; i++) push(ids.imagePad, false);
  push(ids.visionEnd, false), text(layout.questionTokens, false);
  push(ids.imEnd, false), text(1, false), push(ids.imStart, false), text(2, false);
  // R: <|lvr_start|><|lvr|>*K<|lvr_end|>answer<|im_end|>\n
  push(ids.lvrStart, true);
  const slots: number[] = [];
  for (let k = 0; k < spec.latentCount; k++) {
    slots.push(out.length);
    push(ids.lvr, true);
  }
  push(ids.lvrEnd, true), text(spec.answerTokens, true), push(ids.imEnd, true), text(1, true);

  const patches = layout.grid[0] * layout.grid[1] * layout.grid[2];
  const pixels = new Float32Array(patches * QWEN7B.inChans * QWEN7B.temporalPatch * QWEN7B.patch * QWEN7B.patch);
  // Normalised CLIP pixels lie in about [-1.8, 2.1].
  for (let i = 0; i < pixels.length; i++) pixels[i] = rand() * 3.9 - 1.8;
  return {
    ref: { dsName: 'bench', file: 'synthetic', index, global: index },
    inputIds: Int32Array.from(out),
    labels: Int32Array.from(labels),
    images: [{ pixelValues: pixels, grid: layout.grid }],
    imageTokens: [layout.imageTokens],
    boxTokens: [boxTokenIndices(spec.box, layout.grid, QWEN7B.merge)],
    lvrSlots: Int32Array.from(slots),
  };
}

export function buildTrainBatch(spec: TrainBatchSpec): TrainBatch {
  const layout = sampleLayout(spec);
  const rand = mulberry32(spec.seed);
  const samples = Array.from({ length: spec.samples }, (_, i) => buildSample(spec, layout, i, rand));
  const ids = batchIds(spec);
  // Stage 1 masks only <|lvr_latent_end|> targets (method.md §7.4).
  return collate(samples, { imagePadId: ids.imagePad, latentCount: spec.latentCount, merge: QWEN7B.merge, ceIgnoredIds: [ids.lvrLatentEnd] });
}

/** What the PyTorch script reads: the batch as [samples, L] rows, plus the pixel values in a raw float32 file. */
export interface TorchBatchFile {
  samples: number;
  seq_len: number;
  input_ids: number[];
  /** CE targets per row, already shifted and masked (-100), as our trainer uses them */
  targets: number[];
  /** M-RoPE positions, [3][samples][seq_len] flattened */
  positions: number[];
  image_grid_thw: number[][];
  /** per box: its sample, and its visual-token indices local to that sample's first image */
  boxes: { sample: number; tokens: number[] }[];
  /** per box: its K slot positions within the sample's row */
  lvr_slots: number[][];
  image_token_id: number;
  pixel_file: string;
  pixel_rows: number;
  patch_dim: number;
}

export function torchBatchFile(b: TrainBatch, pixelFile: string): TorchBatchFile {
  const n = b.numSamples, T = b.numTokens, L = T / n;
  if (!Number.isInteger(L) || Array.from(b.cuSeqlens).some((c, i) => c !== i * L)) throw new Error('torch batch: samples must all have the same length');
  const boxes: TorchBatchFile['boxes'] = [];
  const slots: number[][] = [];
  for (let x = 0; x < b.numBoxes; x++) {
    const s = b.boxSample[x];
    boxes.push({ sample: s, tokens: Array.from(b.boxLocalIdx.subarray(b.cuBoxTokens[x], b.cuBoxTokens[x + 1])) });
    slots.push(Array.from(b.lvrSlots.subarray(x * b.latentCount, (x + 1) * b.latentCount), (p) => p - s * L));
  }
  const grids: number[][] = [];
  for (let i = 0; i < b.numImages; i++) grids.push(Array.from(b.imageGrids.subarray(3 * i, 3 * i + 3)));
  return {
    samples: n,
    seq_len: L,
    input_ids: Array.from(b.inputIds),
    targets: Array.from(b.targets),
    positions: Array.from(b.positions), // planes of T = n*L tokens: already [3][n][L]
    image_grid_thw: grids,
    boxes,
    lvr_slots: slots,
    image_token_id: -1, // filled by the writer (the config's id)
    pixel_file: pixelFile,
    pixel_rows: b.numPatches,
    patch_dim: b.patchDim,
  };
}

/** Writes batch.json + pixels.f32 into `dir`; returns the JSON file's path. */
export function writeTorchBatch(dir: string, b: TrainBatch, imageTokenId: number): string {
  fs.mkdirSync(dir, { recursive: true });
  const pixelFile = path.join(dir, 'pixels.f32');
  fs.writeFileSync(pixelFile, new Uint8Array(b.pixelValues.buffer, b.pixelValues.byteOffset, b.pixelValues.byteLength));
  const j = { ...torchBatchFile(b, pixelFile), image_token_id: imageTokenId };
  const file = path.join(dir, 'batch.json');
  fs.writeFileSync(file, JSON.stringify(j));
  return file;
}
