// Consistency checks of a TrainBatch (batch.ts documents the layout): run before handing a batch to the native
// trainer when debugging, and by the tests. Each failure is one line naming the field.
import type { TrainBatch } from './batch';

function fail(what: string): never {
  throw new Error(`train batch: ${what}`);
}

function checkOffsets(name: string, a: Int32Array, count: number, total: number): void {
  if (a.length !== count + 1) fail(`${name} has ${a.length} entries, expected ${count + 1}`);
  if (a[0] !== 0 || a[count] !== total) fail(`${name} must run from 0 to ${total}`);
  for (let i = 0; i < count; i++) if (a[i + 1] < a[i]) fail(`${name} decreases at ${i}`);
}

export function checkBatch(b: TrainBatch, ids: { imagePad: number; lvr: number }): void {
  const T = b.numTokens, n = b.numSamples, I = b.numImages, B = b.numBoxes, K = b.latentCount;
  if (b.inputIds.length !== T || b.labels.length !== T || b.targets.length !== T) fail('inputIds/labels/targets must have numTokens entries');
  if (b.positions.length !== 3 * T) fail(`positions has ${b.positions.length} entries, expected 3 x ${T}`);
  checkOffsets('cuSeqlens', b.cuSeqlens, n, T);
  for (let s = 0; s < n; s++) if (b.cuSeqlens[s + 1] === b.cuSeqlens[s]) fail(`sample ${s} is empty`);
  if (b.imageGrids.length !== 3 * I) fail(`imageGrids has ${b.imageGrids.length} entries, expected 3 x ${I}`);
  let patches = 0;
  for (let i = 0; i < I; i++) patches += b.imageGrids[3 * i] * b.imageGrids[3 * i + 1] * b.imageGrids[3 * i + 2];
  if (patches !== b.numPatches || b.pixelValues.length !== patches * b.patchDim) fail(`pixelValues holds ${b.pixelValues.length} floats for ${patches} patches x ${b.patchDim}`);
  checkOffsets('cuImageTokens', b.cuImageTokens, I, b.numVisualTokens);
  checkOffsets('cuSampleVisual', b.cuSampleVisual, n, b.numVisualTokens);
  let pads = 0;
  for (let i = 0; i < T; i++) if (b.inputIds[i] === ids.imagePad) pads++;
  if (pads !== b.numVisualTokens) fail(`${pads} image pads for ${b.numVisualTokens} visual tokens`);
  for (let s = 0; s < n; s++) {
    let p = 0;
    for (let i = b.cuSeqlens[s]; i < b.cuSeqlens[s + 1]; i++) if (b.inputIds[i] === ids.imagePad) p++;
    if (p !== b.cuSampleVisual[s + 1] - b.cuSampleVisual[s]) fail(`sample ${s} has ${p} image pads but ${b.cuSampleVisual[s + 1] - b.cuSampleVisual[s]} visual tokens`);
  }
  checkOffsets('cuBoxTokens', b.cuBoxTokens, B, b.boxTokenIdx.length);
  if (b.boxLocalIdx.length !== b.boxTokenIdx.length || b.boxSample.length !== B) fail('boxLocalIdx/boxSample sizes');
  if (b.lvrSlots.length !== K * B) fail(`lvrSlots has ${b.lvrSlots.length} entries, expected ${K} x ${B}`);
  let lvr = 0;
  for (let i = 0; i < T; i++) if (b.inputIds[i] === ids.lvr) lvr++;
  if (lvr !== K * B) fail(`${lvr} <|lvr|> ids for ${B} boxes x ${K}`);
  for (let x = 0; x < B; x++) {
    const s = b.boxSample[x];
    if (s < 0 || s >= n || (x > 0 && s < b.boxSample[x - 1])) fail(`boxSample[${x}] = ${s} is out of order or range`);
    if (b.cuBoxTokens[x + 1] === b.cuBoxTokens[x]) fail(`box ${x} has no tokens`);
    // boxes index the sample's first image
    const img = b.cuImageTokens.indexOf(b.cuSampleVisual[s]);
    const lo = b.cuSampleVisual[s], hi = img >= 0 && img < I ? b.cuImageTokens[img + 1] : lo;
    for (let j = b.cuBoxTokens[x]; j < b.cuBoxTokens[x + 1]; j++) {
      const g = b.boxTokenIdx[j];
      if (g < lo || g >= hi || g - lo !== b.boxLocalIdx[j]) fail(`box ${x} token ${g} is outside its sample's first image [${lo}, ${hi})`);
    }
    for (let k = 0; k < K; k++) {
      const p = b.lvrSlots[K * x + k];
      if (p < b.cuSeqlens[s] || p >= b.cuSeqlens[s + 1] || b.inputIds[p] !== ids.lvr) fail(`lvrSlots[${K * x + k}] = ${p} is not an <|lvr|> of sample ${s}`);
      if (K * x + k > 0 && p <= b.lvrSlots[K * x + k - 1]) fail(`lvrSlots are not increasing at ${K * x + k}`);
    }
  }
  let targets = 0;
  for (let s = 0; s < n; s++) if (b.targets[b.cuSeqlens[s + 1] - 1] !== -100) fail(`the last token of sample ${s} has a target`);
  for (let i = 0; i < T; i++) if (b.targets[i] !== -100) targets++;
  if (targets !== b.numTargets) fail(`numTargets is ${b.numTargets} but ${targets} targets are set`);
}
