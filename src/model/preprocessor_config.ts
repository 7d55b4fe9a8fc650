// preprocessor_config.json of a Qwen2.5-VL checkpoint: pixel limits of smart_resize and the normalisation
// constants (model.md §3.3, §3.5). Missing file or keys fall back to the released Qwen2.5-VL values.
import * as path from 'path';

import { isObject, readJsonObject } from './json_file';

export const DEFAULT_MIN_PIXELS = 4 * 28 * 28; // 3136
export const DEFAULT_MAX_PIXELS = 16384 * 28 * 28; // 12845056
export const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

export interface PreprocessorConfig {
  minPixels: number;
  maxPixels: number;
  patch: number;
  merge: number;
  temporalPatch: number;
  /** identity values when do_normalize / do_rescale are false */
  mean: [number, number, number];
  std: [number, number, number];
  rescale: number;
  /** where the values came from: the file, or built-in defaults when it is absent */
  source: 'file' | 'defaults';
}

function positiveInt(file: string, key: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw new Error(`${file}: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function triple(file: string, key: string, v: unknown, dflt: [number, number, number]): [number, number, number] {
  if (v === undefined || v === null) return dflt;
  if (typeof v === 'number') return [v, v, v];
  if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)))
    throw new Error(`${file}: ${key} must be 3 numbers, got ${JSON.stringify(v)}`);
  return v as [number, number, number];
}

export function loadPreprocessorConfig(dir: string): PreprocessorConfig {
  const file = path.join(dir, 'preprocessor_config.json');
  const j = readJsonObject(file, true);
  if (!j) {
    return {
      minPixels: DEFAULT_MIN_PIXELS, maxPixels: DEFAULT_MAX_PIXELS, patch: 14, merge: 2, temporalPatch: 2,
      mean: CLIP_MEAN, std: CLIP_STD, rescale: 1 / 255, source: 'defaults',
    };
  }
  const size = isObject(j.size) ? j.size : {};
  // transformers: explicit min_pixels / max_pixels override size.shortest_edge / size.longest_edge
  const pick = (key: string, sizeKey: string, dflt: number): number => {
    if (j[key] !== undefined && j[key] !== null) return positiveInt(file, key, j[key]);
    if (size[sizeKey] !== undefined && size[sizeKey] !== null) return positiveInt(file, `size.${sizeKey}`, size[sizeKey]);
    return dflt;
  };
  const minPixels = pick('min_pixels', 'shortest_edge', DEFAULT_MIN_PIXELS);
  const maxPixels = pick('max_pixels', 'longest_edge', DEFAULT_MAX_PIXELS);
  if (minPixels > maxPixels) throw new Error(`${file}: min_pixels ${minPixels} exceeds max_pixels ${maxPixels}`);
  if (j.resample !== undefined && j.resample !== 3)
    throw new Error(`${file}: resample ${JSON.stringify(j.resample)} is not supported (only 3 = bicubic)`);
  const doNormalize = j.do_normalize !== false;
  const doRescale = j.do_rescale !== false;
  let rescale = 1 / 255;
  if (j.rescale_factor !== undefined) {
    if (typeof j.rescale_factor !== 'number' || !(j.rescale_factor > 0)) throw new Error(`${file}: rescale_factor must be a positive number`);
    rescale = j.rescale_factor;
  }
  const std = triple(file, 'image_std', j.image_std, CLIP_STD);
  if (std.some((s) => s === 0)) throw new Error(`${file}: image_std has a zero entry`);
  return {
    minPixels,
    maxPixels,
    patch: j.patch_size === undefined ? 14 : positiveInt(file, 'patch_size', j.patch_size),
    merge: j.merge_size === undefined ? 2 : positiveInt(file, 'merge_size', j.merge_size),
    temporalPatch: j.temporal_patch_size === undefined ? 2 : positiveInt(file, 'temporal_patch_size', j.temporal_patch_size),
    mean: doNormalize ? triple(file, 'image_mean', j.image_mean, CLIP_MEAN) : [0, 0, 0],
    std: doNormalize ? std : [1, 1, 1],
    rescale: doRescale ? rescale : 1,
    source: 'file',
  };
}
