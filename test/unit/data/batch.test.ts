// Collation of two hand-built samples into one varlen batch, every field worked out by hand (latent count 2,
// image pad 9, <|lvr|> 7, <|lvr_start|> 6, <|lvr_end|> 8, patch rows of 2 floats to keep arrays short).
import { ceIgnoredIds, collate } from '../../../src/data/batch';
import { checkBatch } from '../../../src/data/batch_check';
import { batchFootprint, estimateActivationMemory } from '../../../src/data/memory';
import type { TrainSample } from '../../../src/data/sample';

const P = 9, LVR = 7, LS = 6, LE = 8, X = -100;
const img = (grid: [number, number, number], mark: number) => {
  const n = grid[0] * grid[1] * grid[2];
  return { grid, pixelValues: Float32Array.from({ length: 2 * n }, (_, i) => mark + i) };
};
const sample = (global: number, ids: number[], labels: number[], images: ReturnType<typeof img>[], boxes: number[][]): TrainSample => ({
  ref: { dsName: 'd', file: 'f', index: global, global },
  inputIds: Int32Array.from(ids),
  labels: Int32Array.from(labels),
  images,
  imageTokens: images.map((im) => (im.grid[0] * im.grid[1] * im.grid[2]) / 4),
  boxTokens: boxes.map((b) => Int32Array.from(b)),
  lvrSlots: Int32Array.from(ids.flatMap((id, i) => (id === LVR ? [i] : []))),
});

// A: 12 tokens, one image (grid 1x2x4 -> 1x2 merged, 8 patches), one box (local token 1)
const A = sample(5, [1, 2, P, P, 3, LS, LVR, LVR, LE, 4, 5, 0], [X, X, X, X, X, LS, LVR, LVR, LE, 4, 5, 0], [img([1, 2, 4], 100)], [[1]]);
// B: 14 tokens, two images (grid 1x2x2 -> 1 merged token; grid 1x4x2 -> 2x1), two boxes on the first image
const B = sample(
  2,
  [1, P, P, P, 3, LS, LVR, LVR, LE, LS, LVR, LVR, LE, 4],
  [X, X, X, X, X, LS, LVR, LVR, LE, LS, LVR, LVR, LE, 4],
  [img([1, 2, 2], 200), img([1, 4, 2], 300)],
  [[0], [0]],
);

const opts = { imagePadId: P, latentCount: 2, merge: 2, ceIgnoredIds: [] as number[] };

test('text side: ids, cu_seqlens, labels, per-sample shifted targets', () => {
  const b = collate([A, B], opts);
  expect(b.numSamples).toBe(2);
  expect(b.numTokens).toBe(26);
  expect(Array.from(b.cuSeqlens)).toEqual([0, 12, 26]);
  expect(Array.from(b.inputIds)).toEqual([...A.inputIds, ...B.inputIds]);
  expect(Array.from(b.labels)).toEqual([...A.labels, ...B.labels]);
  // targets[i] = labels[i+1] inside a sample; the last token of each sample has none
  expect(Array.from(b.targets)).toEqual([
    X, X, X, X, LS, LVR, LVR, LE, 4, 5, 0, X,
    X, X, X, X, LS, LVR, LVR, LE, LS, LVR, LVR, LE, 4, X,
  ]);
  expect(b.numTargets).toBe(7 + 9);
  expect(Array.from(b.sampleIds)).toEqual([5, 2]);
});

test('stage 2 drops the <|lvr|> targets', () => {
  const b = collate([A, B], { ...opts, ceIgnoredIds: ceIgnoredIds(2, { lvr: LVR, lvrLatentEnd: 99 }) });
  expect(Array.from(b.targets.subarray(0, 12))).toEqual([X, X, X, X, LS, X, X, LE, 4, 5, 0, X]);
  expect(b.numTargets).toBe(5 + 5);
  expect(ceIgnoredIds(1, { lvr: LVR, lvrLatentEnd: 99 })).toEqual([99]);
});

test('positions restart in every sample', () => {
  const b = collate([A, B], opts);
  const T = 26;
  const plane = (p: number) => Array.from(b.positions.subarray(p * T, (p + 1) * T));
  // A: 0 1 | image 1x2 at base 2: t 2 2, h 2 2, w 2 3 | text from 4
  // B: 0 | image 1x1 at base 1 | image 2x1 at base 2: h 2 3, w 2 2 | text from 4
  expect(plane(0)).toEqual([0, 1, 2, 2, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
  expect(plane(1)).toEqual([0, 1, 2, 2, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
  expect(plane(2)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
});

test('vision side: pixel rows and grids concatenated, visual-token offsets per image and per sample', () => {
  const b = collate([A, B], opts);
  expect([b.numImages, b.numPatches, b.patchDim, b.numVisualTokens]).toEqual([3, 8 + 4 + 8, 2, 5]);
  expect(Array.from(b.imageGrids)).toEqual([1, 2, 4, 1, 2, 2, 1, 4, 2]);
  expect(Array.from(b.pixelValues.subarray(0, 2))).toEqual([100, 101]);
  expect(Array.from(b.pixelValues.subarray(16, 18))).toEqual([200, 201]);
  expect(Array.from(b.pixelValues.subarray(24, 26))).toEqual([300, 301]);
  expect(b.pixelValues.length).toBe(40);
  expect(Array.from(b.cuImageTokens)).toEqual([0, 2, 3, 5]);
  expect(Array.from(b.cuSampleVisual)).toEqual([0, 2, 5]);
});

test('latent side: global box rows, local indices, owners and slot positions', () => {
  const b = collate([A, B], opts);
  expect(b.numBoxes).toBe(3);
  expect(Array.from(b.cuBoxTokens)).toEqual([0, 1, 2, 3]);
  expect(Array.from(b.boxLocalIdx)).toEqual([1, 0, 0]);
  expect(Array.from(b.boxTokenIdx)).toEqual([1, 2, 2]); // B's first image starts at visual row 2
  expect(Array.from(b.boxSample)).toEqual([0, 1, 1]);
  expect(Array.from(b.lvrSlots)).toEqual([6, 7, 12 + 6, 12 + 7, 12 + 10, 12 + 11]);
  checkBatch(b, { imagePad: P, lvr: LVR });
});

test('checkBatch catches broken batches', () => {
  const b = collate([A, B], opts);
  b.lvrSlots[0] = 5;
  expect(() => checkBatch(b, { imagePad: P, lvr: LVR })).toThrow(/lvrSlots\[0\] = 5 is not an <\|lvr\|> of sample 0/);
  const c = collate([A, B], opts);
  c.boxTokenIdx[1] = 4; // B's second image, not its first
  expect(() => checkBatch(c, { imagePad: P, lvr: LVR })).toThrow(/box 1 token 4 is outside its sample's first image \[2, 3\)/);
  const d = collate([A], opts);
  d.numTargets++;
  expect(() => checkBatch(d, { imagePad: P, lvr: LVR })).toThrow(/numTargets/);
  expect(() => collate([], opts)).toThrow(/no samples/);
  expect(() => collate([{ ...A, lvrSlots: Int32Array.of(6) }], opts)).toThrow(/1 <\|lvr\|> slots for 1 boxes/);
});

test('footprint and activation estimate', () => {
  const b = collate([A, B], opts);
  const fp = batchFootprint(b);
  expect(fp).toMatchObject({ samples: 2, tokens: 26, visualTokens: 5, patches: 20, images: 3, boxes: 3 });
  expect(fp.inputBytes).toBeGreaterThan(40 * 4);
  const text = { hidden: 8, layers: 2, heads: 2, kvHeads: 1, headDim: 4, intermediate: 16, vocab: 10, rmsEps: 1e-6, ropeTheta: 1e6, mropeSection: [1, 0, 1] as [number, number, number], tieEmbeddings: false };
  const vision = { depth: 1, hidden: 4, heads: 1, intermediate: 8, outHidden: 8, patch: 14, temporalPatch: 2, merge: 2, windowSize: 112, fullattBlocks: [], inChannels: 3, ropeTheta: 1e4 };
  const e = estimateActivationMemory(fp, text, vision, { activationBytes: 2, checkpointing: false });
  // per layer 26 * (6*8 + 2*4 + 3*16) * 2 = 5408; 2 layers
  expect(e.llmBytes).toBe(2 * 5408);
  // 20 * (6*4 + 3*8) * 2 + 5 * 8 * 2
  expect(e.visionBytes).toBe(1920 + 80);
  expect(e.logitsBytes).toBe(2 * 26 * 10 * 4);
  const c = estimateActivationMemory(fp, text, vision, { activationBytes: 2, checkpointing: true });
  expect(c.llmBytes).toBe(2 * 26 * 8 * 2 + 5408);
});
