// The micro-batch handed to the native Trainer (Trainer.step), and the collation of samples into it.
//
// Upstream right-pads the up-to-4 samples of a "pack" into separate rows (method.md §5.3); here the samples are
// concatenated into one token stream with cu_seqlens boundaries (varlen attention, no cross-sample attention),
// which computes the same maths without the padding (engineering.md: "identical maths"). Everything that
// upstream computes per padded row is computed per sample: M-RoPE positions restart at 0 in every sample, the
// CE shift never crosses a sample boundary, box indices are offset into the concatenated visual tokens.
import { IGNORE_INDEX } from './constants';
import { writeMropePositions } from './rope_index';
import type { TrainSample } from './sample';

/**
 * One micro-batch for `Trainer.step(batch)` (forward + backward of n samples), all typed arrays so they can be
 * handed to N-API without copying. Notation: n samples, T tokens in all, I images, V visual (merged) tokens in
 * all, P vision patches in all, B boxes, K = latentCount. Indices are 0-based int32.
 *
 * Text side
 * - `inputIds` [T]: the samples' ids back to back (image pads expanded; `<|lvr|>` ids at the latent slots).
 * - `cuSeqlens` [n+1]: sample s owns tokens [cuSeqlens[s], cuSeqlens[s+1]); attention is causal within a sample
 *   and never crosses samples (flash_attn_varlen_func convention).
 * - `positions` [3*T]: M-RoPE position ids, planes t, h, w (plane p of token i at p*T + i), restarting at 0 in
 *   each sample (get_rope_index per sample).
 * - `labels` [T]: upstream's labels, NOT shifted (-100 on system/user pieces and image pads; response ids).
 * - `targets` [T]: what the cross-entropy uses: targets[i] = labels[i+1] when token i+1 is in the same sample,
 *   else -100; targets whose id is in `ceIgnoredIds` are -100 too (stage 2 ignores the `<|lvr|>` targets, §7.4).
 *   The CE is the mean over the `numTargets` entries that are not -100 (all samples of the micro-batch together).
 *
 * Vision side
 * - `pixelValues` [P * patchDim]: every image's patch rows, images in sample order then in-sample order
 *   (the vision tower's input; frozen, forward only).
 * - `imageGrids` [3*I]: (t, h, w) in patches per image; image i has t*h*w patches and t*h*w/merge^2 merged tokens.
 * - `cuImageTokens` [I+1]: image i's merged tokens are rows [cuImageTokens[i], cuImageTokens[i+1]) of the
 *   visual features V [numVisualTokens, D]. V rows fill the `<|image_pad|>` positions of `inputIds` in order.
 * - `cuSampleVisual` [n+1]: sample s's visual tokens (all its images) are rows [cuSampleVisual[s],
 *   cuSampleVisual[s+1]) of V: the DAC student's keys/values in stage 2 (§9.3).
 *
 * Latent side (method.md §7.2)
 * - `boxTokenIdx` [sum N_b], `cuBoxTokens` [B+1]: box b's region is rows boxTokenIdx[cuBoxTokens[b] ..
 *   cuBoxTokens[b+1]) of V (global rows: the sample's first-image offset + upstream's local index). BCM keys.
 *   Never empty (the dummy box is [0] of its sample's first image).
 * - `boxLocalIdx` [sum N_b]: the same indices local to the sample's first image (upstream's `lvr_tokens`), for
 *   the stage-2 KL's scatter of teacher attention into full-image coordinates (add cuSampleVisual for rows of V).
 * - `boxSample` [B]: the sample owning box b. Boxes are in sample order, then in-record order.
 * - `lvrSlots` [K*B]: token positions (into inputIds) of the `<|lvr|>` slots; box b owns slots
 *   lvrSlots[K*b .. K*b+K) in order; slot k of box b gets the k-th BCM latent (teacher forcing). Stage 1 aligns
 *   h[slot - 1] with z_k, stage 2 feeds h[slot] to DAC.
 */
export interface TrainBatch {
  numSamples: number;
  numTokens: number;
  inputIds: Int32Array;
  cuSeqlens: Int32Array;
  positions: Int32Array;
  labels: Int32Array;
  targets: Int32Array;
  numTargets: number;

  pixelValues: Float32Array;
  /** floats per patch row: 3 * temporalPatch * patch^2 (1176) */
  patchDim: number;
  numImages: number;
  numPatches: number;
  imageGrids: Int32Array;
  cuImageTokens: Int32Array;
  numVisualTokens: number;
  cuSampleVisual: Int32Array;

  latentCount: number;
  numBoxes: number;
  boxTokenIdx: Int32Array;
  boxLocalIdx: Int32Array;
  cuBoxTokens: Int32Array;
  boxSample: Int32Array;
  lvrSlots: Int32Array;

  /** global record index of each sample (logging, resume checks) */
  sampleIds: Int32Array;
}

export interface CollateOptions {
  imagePadId: number;
  latentCount: number;
  merge: number;
  /** target ids the CE ignores: stage 1 `<|lvr_latent_end|>`, stage 2 also `<|lvr|>` (see ceIgnoredIds) */
  ceIgnoredIds: readonly number[];
}

/** Target ids masked out of the cross-entropy per stage (method.md §7.4). */
export function ceIgnoredIds(stage: 1 | 2, ids: { lvr: number; lvrLatentEnd: number }): number[] {
  return stage === 1 ? [ids.lvrLatentEnd] : [ids.lvr, ids.lvrLatentEnd];
}

/** Concatenates samples into one TrainBatch (one sample: the unpacked path). */
export function collate(samples: readonly TrainSample[], opts: CollateOptions): TrainBatch {
  if (samples.length === 0) throw new Error('collate: no samples');
  const n = samples.length, K = opts.latentCount, m2 = opts.merge * opts.merge;
  const T = samples.reduce((a, s) => a + s.inputIds.length, 0);
  const images = samples.flatMap((s) => s.images);
  const I = images.length;
  const patchDim = I ? images[0].pixelValues.length / (images[0].grid[0] * images[0].grid[1] * images[0].grid[2]) : 0;
  const P = images.reduce((a, im) => a + im.grid[0] * im.grid[1] * im.grid[2], 0);
  const B = samples.reduce((a, s) => a + s.boxTokens.length, 0);
  const boxLen = samples.reduce((a, s) => a + s.boxTokens.reduce((b, t) => b + t.length, 0), 0);
  const ignored = new Set(opts.ceIgnoredIds);

  const b: TrainBatch = {
    numSamples: n, numTokens: T,
    inputIds: new Int32Array(T), cuSeqlens: new Int32Array(n + 1), positions: new Int32Array(3 * T),
    labels: new Int32Array(T), targets: new Int32Array(T), numTargets: 0,
    pixelValues: new Float32Array(P * patchDim), patchDim, numImages: I, numPatches: P,
    imageGrids: new Int32Array(3 * I), cuImageTokens: new Int32Array(I + 1), numVisualTokens: 0,
    cuSampleVisual: new Int32Array(n + 1),
    latentCount: K, numBoxes: B, boxTokenIdx: new Int32Array(boxLen), boxLocalIdx: new Int32Array(boxLen),
    cuBoxTokens: new Int32Array(B + 1), boxSample: new Int32Array(B), lvrSlots: new Int32Array(K * B),
    sampleIds: Int32Array.from(samples, (s) => s.ref.global),
  };

  let tok = 0, img = 0, vis = 0, pix = 0, box = 0, bt = 0;
  samples.forEach((s, si) => {
    const L = s.inputIds.length;
    if (s.lvrSlots.length !== K * s.boxTokens.length)
      throw new Error(`collate: sample ${s.ref.global} has ${s.lvrSlots.length} <|lvr|> slots for ${s.boxTokens.length} boxes`);
    b.inputIds.set(s.inputIds, tok);
    b.labels.set(s.labels, tok);
    for (let i = 0; i < L; i++) {
      const t = i + 1 < L ? s.labels[i + 1] : IGNORE_INDEX;
      const keep = t !== IGNORE_INDEX && !ignored.has(t);
      b.targets[tok + i] = keep ? t : IGNORE_INDEX;
      if (keep) b.numTargets++;
    }
    writeMropePositions(s.inputIds, s.images.map((im) => im.grid), opts.imagePadId, opts.merge, b.positions, tok, T);

    const firstImageRow = vis;
    b.cuSampleVisual[si] = vis;
    for (const im of s.images) {
      const patches = im.grid[0] * im.grid[1] * im.grid[2];
      if (im.pixelValues.length !== patches * patchDim)
        throw new Error(`collate: image ${img} of sample ${s.ref.global} has ${im.pixelValues.length} floats, expected ${patches} x ${patchDim}`);
      b.pixelValues.set(im.pixelValues, pix);
      pix += im.pixelValues.length;
      b.imageGrids.set(im.grid, 3 * img);
      b.cuImageTokens[img] = vis;
      vis += patches / m2;
      img++;
    }
    s.boxTokens.forEach((idx, k) => {
      b.cuBoxTokens[box] = bt;
      b.boxSample[box] = si;
      for (let j = 0; j < idx.length; j++) {
        b.boxLocalIdx[bt + j] = idx[j];
        b.boxTokenIdx[bt + j] = firstImageRow + idx[j];
      }
      bt += idx.length;
      for (let j = 0; j < K; j++) b.lvrSlots[K * box + j] = tok + s.lvrSlots[K * k + j];
      box++;
    });
    tok += L;
    b.cuSeqlens[si + 1] = tok;
  });
  b.cuImageTokens[I] = vis;
  b.cuSampleVisual[n] = vis;
  b.cuBoxTokens[B] = bt;
  b.numVisualTokens = vis;
  return b;
}
