// Image -> Qwen2.5-VL pixel_values (model.md §3): decode to RGB, one smart_resize, then in one native call
// Pillow-exact bicubic resize + rescale/normalise + patchify. Bit-identical to transformers' processor fed
// with the qwen-vl-utils-resized image.
import { decodeImage, DecodeOptions } from './decode';
import { nativePreprocess } from './native_image';
import { smartResize } from './smart_resize';
import {
  CLIP_MEAN, CLIP_STD, DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS,
} from '../model/preprocessor_config';

export interface PreprocessOptions extends DecodeOptions {
  minPixels?: number;
  maxPixels?: number;
  /** from preprocessor_config.json; CLIP / Qwen2.5-VL values when omitted */
  mean?: [number, number, number];
  std?: [number, number, number];
  rescale?: number;
  patch?: number;
  merge?: number;
  temporalPatch?: number;
}

export interface PreprocessedImage {
  /** [gh*gw, 3*temporalPatch*patch*patch] float32, rows in 2x2-merge-block order */
  pixelValues: Float32Array;
  /** image_grid_thw = [1, gh, gw] */
  grid: [number, number, number];
  resized: { width: number; height: number };
  original: { width: number; height: number };
  /** the resized image, height x width x 3 uint8 RGB (for drawing attention maps) */
  rgb: Uint8Array;
  /** Pillow mode of the source file (RGB, RGBA, L, ...); 'RGB' for raw input */
  mode: string;
}

/** Preprocesses an already decoded RGB image (height x width x 3). */
export async function preprocessRgb(rgb: Uint8Array, width: number, height: number, opts: PreprocessOptions = {}): Promise<PreprocessedImage> {
  const patch = opts.patch ?? 14, merge = opts.merge ?? 2, temporal = opts.temporalPatch ?? 2;
  const [h, w] = smartResize(height, width, {
    factor: patch * merge,
    minPixels: opts.minPixels ?? DEFAULT_MIN_PIXELS,
    maxPixels: opts.maxPixels ?? DEFAULT_MAX_PIXELS,
  });
  const out = await nativePreprocess(rgb, width, height, w, h, {
    rescale: opts.rescale ?? 1 / 255,
    mean: opts.mean ?? CLIP_MEAN,
    std: opts.std ?? CLIP_STD,
    patch,
    merge,
    temporalPatch: temporal,
  });
  return {
    pixelValues: out.pixelValues,
    grid: [1, h / patch, w / patch],
    resized: { width: w, height: h },
    original: { width, height },
    rgb: out.resized,
    mode: 'RGB',
  };
}

/** Decodes a file or buffer and preprocesses it; errors are one line and name the image. */
export async function preprocessImage(input: string | Buffer, opts: PreprocessOptions = {}): Promise<PreprocessedImage> {
  const img = await decodeImage(input, opts);
  const name = typeof input === 'string' ? input : opts.name ?? '<image buffer>';
  try {
    const r = await preprocessRgb(img.rgb, img.width, img.height, opts);
    r.mode = img.mode;
    return r;
  } catch (e) {
    throw new Error(`image ${name}: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`);
  }
}
