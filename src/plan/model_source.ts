// The model a plan is for: a checkpoint directory (its config.json) or a preset name ("7b", "3b").
import * as fs from 'fs';
import * as path from 'path';

import { loadModelConfig } from '../model/config';
import { UserError } from '../util/errors';
import { ModelShape, PRESETS } from './model_shape';

export interface PlanModel {
  shape: ModelShape;
  /** the checkpoint's processor limits, when read from a directory */
  minPixels?: number;
  maxPixels?: number;
}

export function planModel(spec: string): PlanModel {
  // Own keys only: "constructor" or "__proto__" are not presets.
  if (Object.hasOwn(PRESETS, spec.toLowerCase())) return { shape: PRESETS[spec.toLowerCase()] };
  if (!fs.existsSync(spec)) throw new UserError(`--model: ${spec} is neither a checkpoint directory nor a preset (${Object.keys(PRESETS).join(', ')})`);
  try {
    const cfg = loadModelConfig(spec);
    return { shape: { name: path.basename(path.resolve(spec)), text: cfg.text, vision: cfg.vision }, minPixels: cfg.preprocess.minPixels, maxPixels: cfg.preprocess.maxPixels };
  } catch (e) {
    throw new UserError(`--model: ${(e as Error).message}`);
  }
}

/** Replace the layer counts (bench models: the 7B widths with few layers). */
export function withLayers(shape: ModelShape, llmLayers: number, vitLayers: number, vocab?: number): ModelShape {
  return {
    name: `${shape.name} widths, ${llmLayers} LLM + ${vitLayers} ViT layers`,
    text: { ...shape.text, layers: llmLayers, vocab: vocab ?? shape.text.vocab },
    vision: { ...shape.vision, depth: vitLayers },
  };
}
