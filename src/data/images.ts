// Training image preprocessing (method.md §4.1): decode to RGB (RGBA composited on white), ONE smart_resize with
// the training bounds (--image-min-pixels 100352 / --image-max-pixels 4014080, i.e. 128..5120 merged tokens),
// Pillow bicubic resize, rescale + normalise, patchify. That is qwen-vl-utils' fetch_image followed by the
// processor with do_resize=False, which src/image/preprocess.ts reproduces bit for bit.
import * as fs from 'fs';

import { preprocessImage } from '../image/preprocess';
import { loadAddon } from '../native/addon';
import type { PreprocessorConfig } from '../model/preprocessor_config';
import { DEFAULT_TRAIN_MAX_PIXELS, DEFAULT_TRAIN_MIN_PIXELS } from './constants';
import { SampleSkip } from './skips';

export interface TrainImage {
  /** [t*h*w, 3 * temporalPatch * patch * patch] float32 rows (2x2-merge-block order) */
  pixelValues: Float32Array;
  /** image_grid_thw (t, h, w) in patches */
  grid: [number, number, number];
}

/** Loads one image file for training; throws SampleSkip for a missing or undecodable file. */
export type ImageLoader = (file: string) => Promise<TrainImage>;

export interface TrainImageOptions {
  minPixels?: number;
  maxPixels?: number;
  /** normalisation and patch geometry of the checkpoint's processor; Qwen2.5-VL's when omitted */
  preprocess?: Partial<Pick<PreprocessorConfig, 'mean' | 'std' | 'rescale' | 'patch' | 'merge' | 'temporalPatch'>>;
}

/** Checks the pixel bounds the way the CLI reports them (flag names in the message). */
export function checkPixelBounds(minPixels: number, maxPixels: number): void {
  if (!Number.isSafeInteger(minPixels) || minPixels < 1) throw new Error(`--image-min-pixels must be a positive integer, got ${minPixels}`);
  if (!Number.isSafeInteger(maxPixels) || maxPixels < minPixels)
    throw new Error(`--image-max-pixels must be an integer >= --image-min-pixels (${minPixels}), got ${maxPixels}`);
}

export function makeImageLoader(opts: TrainImageOptions = {}): ImageLoader {
  const minPixels = opts.minPixels ?? DEFAULT_TRAIN_MIN_PIXELS;
  const maxPixels = opts.maxPixels ?? DEFAULT_TRAIN_MAX_PIXELS;
  checkPixelBounds(minPixels, maxPixels);
  const pp = opts.preprocess ?? {};
  loadAddon(); // a missing addon is a run error, not a skip of every image
  return async (file) => {
    if (!fs.existsSync(file)) throw new SampleSkip('missing_image', file);
    try {
      const r = await preprocessImage(file, { minPixels, maxPixels, ...pp });
      return { pixelValues: r.pixelValues, grid: r.grid };
    } catch (e) {
      throw new SampleSkip('undecodable_image', (e instanceof Error ? e.message : String(e)).split('\n')[0]);
    }
  };
}
