// The --device cuda pre-flight of each command: the plan inputs it knows (model config, image size, training
// micro-batch), handed to requireCuda (preflight.ts). Each returns only when --device is cpu or auto.
import sharp from 'sharp';

import { EVAL_MAX_PIXELS, EVAL_MIN_PIXELS } from '../eval/benchmarks/common';
import { smartResize } from '../image/smart_resize';
import { UserError } from '../util/errors';
import { OptimizerStates, planInference, planTraining } from './gpu_memory';
import { PRESETS } from './model_shape';
import { planModel, withLayers } from './model_source';
import { DeviceChoice, requireCuda } from './preflight';
import { largestMicroBatch } from './train_batch_shape';

/** Text tokens assumed around the image when the prompt is not tokenised yet (chat template + question). */
const PROMPT_TOKENS = 512;

export async function inferDevicePreflight(a: {
  device: DeviceChoice; model: string; image?: string; maxNewTokens: number; latentSteps: number; minPixels?: number; maxPixels?: number;
}): Promise<void> {
  if (a.device !== 'cuda') return;
  const m = planModel(a.model);
  let imageTokens = 0;
  if (a.image) {
    const meta = await sharp(a.image).metadata().catch((e: Error) => {
      throw new UserError(`cannot read the image size of ${a.image}: ${e.message}`);
    });
    const [h, w] = smartResize(meta.height ?? 1, meta.width ?? 1, {
      minPixels: a.minPixels ?? m.minPixels ?? EVAL_MIN_PIXELS,
      maxPixels: a.maxPixels ?? m.maxPixels ?? EVAL_MAX_PIXELS,
    });
    imageTokens = (h * w) / (28 * 28);
  }
  requireCuda((c) =>
    planInference({ shape: m.shape, imageTokens, promptTokens: PROMPT_TOKENS, maxNewTokens: a.maxNewTokens, latentSteps: a.latentSteps, ...c, pixelsFlag: '--max-pixels' }),
  );
}

/** eval: the worst case of the run, an image at the largest max_pixels any selected benchmark allows. */
export function evalDevicePreflight(a: { device: DeviceChoice; model: string; maxPixels: number; maxNewTokens: number; latentSteps: number }): void {
  if (a.device !== 'cuda') return;
  const m = planModel(a.model);
  requireCuda((c) =>
    planInference({
      shape: m.shape, imageTokens: Math.floor(a.maxPixels / (28 * 28)), promptTokens: PROMPT_TOKENS, maxNewTokens: a.maxNewTokens,
      latentSteps: a.latentSteps, ...c, pixelsFlag: '--hrbench8k-max-pixels / --hrbench4k-max-pixels',
    }),
  );
}

export function trainDevicePreflight(a: {
  device: DeviceChoice; model: string; stage: 1 | 2; packing: boolean; perDeviceBatchSize: number; imageMaxPixels: number; optimizerStates: OptimizerStates | 'auto';
}): void {
  if (a.device !== 'cuda') return;
  const m = planModel(a.model);
  const mb = largestMicroBatch(a);
  requireCuda((c) => planTraining({ shape: m.shape, stage: a.stage, ...mb, optimizerStates: a.optimizerStates, ...c }));
}

/** bench infer / bench train: the 7B widths with the benchmark's layer counts. */
export function benchDevicePreflight(a: {
  device: DeviceChoice; kind: 'infer' | 'train'; llmLayers: number; vitLayers: number; vocab?: number; tokens?: number; imageTokens?: number; newTokens?: number;
}): void {
  if (a.device !== 'cuda') return;
  const shape = withLayers(PRESETS['7b'], a.llmLayers, a.vitLayers, a.vocab);
  const imageTokens = a.imageTokens ?? 256;
  requireCuda((c) =>
    a.kind === 'infer'
      ? planInference({ shape, imageTokens, promptTokens: PROMPT_TOKENS, maxNewTokens: a.newTokens ?? 512, latentSteps: 8, ...c })
      : planTraining({ shape, stage: 1, tokens: a.tokens ?? 1024, visualTokens: Math.min(a.tokens ?? 1024, imageTokens), optimizerStates: 'auto', ...c }),
  );
}
