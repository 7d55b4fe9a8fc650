// Golden parity against Hugging Face transformers: the fixtures under test/golden/cases were produced by
// test/golden/make_golden.py (tiny random Qwen2.5-VL checkpoints, both config layouts, fp32 and bf16 files).
// fp32: pixel values bit-identical, positions identical, vision features / logits / hidden states within a tight
// tolerance, greedy tokens identical (plain and latent decoding). bf16: flash-attention's rule — our error
// against the fp32 reference is at most 2x the error of transformers' own bf16 run.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

import { Engine } from '../../src/infer/engine';
import { readSafetensorsHeader } from '../../src/model/safetensors';

const GOLDEN = __dirname;
const CASES = fs
  .readdirSync(path.join(GOLDEN, 'cases'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.replace(/\.json$/, ''))
  .sort();

function loadTensors(file: string): Map<string, Float32Array> {
  const h = readSafetensorsHeader(file);
  const buf = fs.readFileSync(file);
  const out = new Map<string, Float32Array>();
  for (const [name, t] of h.tensors) {
    if (t.dtype !== 'F32') continue;
    const bytes = buf.subarray(h.dataStart + t.begin, h.dataStart + t.end);
    out.set(name, new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)));
  }
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

const engines = new Map<string, Promise<Engine>>();
function engineFor(modelDir: string, dtype: 'fp32' | 'bf16'): Promise<Engine> {
  const key = `${modelDir}|${dtype}`;
  if (!engines.has(key)) engines.set(key, Engine.load(path.join(GOLDEN, modelDir), { dtype }));
  return engines.get(key)!;
}

describe.each(CASES)('golden case %s', (name) => {
  const c = JSON.parse(fs.readFileSync(path.join(GOLDEN, 'cases', `${name}.json`), 'utf8'));
  const ref = loadTensors(path.join(GOLDEN, 'cases', `${name}.safetensors`));
  // one image: c.image / c.image_grid_thw; several (in prompt order): c.images / c.image_grid_thws
  const imageFiles: string[] = (c.images ?? [c.image]).map((f: string) => path.join(GOLDEN, f));
  const grids: number[][] = c.image_grid_thws ?? [c.image_grid_thw];
  const request = {
    ...(imageFiles.length === 1 ? { image: imageFiles[0] } : { images: imageFiles }),
    prompt: c.prompt,
    assistantPrefix: c.assistant_prefix,
    latentSteps: c.decoding === 'latent' ? c.latent_steps : 0,
    maxNewTokens: c.max_new_tokens,
    repetitionPenalty: c.repetition_penalty,
    allLogits: true,
    keepStepLogits: true,
  };

  test('fp32: inputs, activations and greedy tokens match transformers', async () => {
    const engine = await engineFor(c.model_dir, 'fp32');
    const r = await engine.run(request);
    // prompt and preprocessing
    expect(Array.from(r.promptIds)).toEqual(c.input_ids);
    expect(r.images.map((im) => im.grid)).toEqual(grids);
    // pixel values of all images, concatenated in prompt order as the processor returns them
    const hash = crypto.createHash('sha256');
    for (const im of r.images) hash.update(Buffer.from(im.pixelValues.buffer, im.pixelValues.byteOffset, im.pixelValues.byteLength));
    expect(hash.digest('hex')).toBe(c.pixel_values.sha256);
    // M-RoPE positions
    const L = c.input_ids.length;
    const pos = Array.from(r.prefill.positions);
    expect([pos.slice(0, L), pos.slice(L, 2 * L), pos.slice(2 * L)]).toEqual(c.position_ids);
    expect(r.prefill.ropeDelta).toBe(c.rope_delta);
    // activations (fp32 vs fp32: only summation order differs)
    const vf = ref.get('vision_features')!;
    expect(maxAbsDiff(r.prefill.visionFeatures!, vf)).toBeLessThan(1e-4 * Math.max(1, maxAbs(vf)));
    const lg = ref.get('logits')!;
    expect(maxAbsDiff(r.prefill.logits, lg)).toBeLessThan(2e-4 * Math.max(1, maxAbs(lg)));
    const hs = ref.get('last_hidden')!;
    expect(maxAbsDiff(r.prefill.hidden, hs)).toBeLessThan(2e-4 * Math.max(1, maxAbs(hs)));
    // decoding
    expect(r.token_ids).toEqual(c.generated_ids);
    expect(r.text).toBe(c.output_text);
    const sl = ref.get('step_logits')!;
    expect(maxAbsDiff(r.stepLogits!, sl)).toBeLessThan(2e-4 * Math.max(1, maxAbs(sl)));
  });

  test('bf16: error vs fp32 within 2x of transformers bf16', async () => {
    const engine = await engineFor(c.model_dir, 'bf16');
    const r = await engine.run({ ...request, keepStepLogits: false });
    const lg = ref.get('logits')!;
    const refErr = maxAbsDiff(ref.get('logits_bf16_ref')!, lg);
    const ourErr = maxAbsDiff(r.prefill.logits, lg);
    expect(ourErr).toBeLessThanOrEqual(2 * refErr + 1e-3);
    const vf = ref.get('vision_features')!;
    const vRefErr = maxAbsDiff(ref.get('vision_features_bf16_ref')!, vf);
    expect(maxAbsDiff(r.prefill.visionFeatures!, vf)).toBeLessThanOrEqual(2 * vRefErr + 1e-3);
  });
});
