// smart_resize (model.md §3.3): the size, a multiple of `factor` on both sides with a pixel count inside
// [minPixels, maxPixels], that an image is resized to before patchifying. This follows qwen-vl-utils (the
// product's preprocessing, whose result the HF processor keeps): the first rounding is guarded by
// max(factor, ·); the floor branch is guarded too, where qwen-vl-utils could return 0 for a side < factor/2
// (an unusable size; transformers guards that branch the same way).

export const IMAGE_FACTOR = 28;
export const MAX_ASPECT_RATIO = 200;

export interface SmartResizeOptions {
  factor?: number;
  minPixels: number;
  maxPixels: number;
}

/** Python's round(): half to even, on the double value. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f; // exact in IEEE arithmetic
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Returns [height, width] after smart_resize; throws for an aspect ratio above 200 or a non-positive size. */
export function smartResize(height: number, width: number, opts: SmartResizeOptions): [number, number] {
  const factor = opts.factor ?? IMAGE_FACTOR;
  const { minPixels, maxPixels } = opts;
  if (!Number.isSafeInteger(height) || !Number.isSafeInteger(width) || height < 1 || width < 1)
    throw new Error(`smart_resize: image size ${width}x${height} is not a positive integer size`);
  if (!(minPixels > 0) || !(maxPixels > 0) || minPixels > maxPixels)
    throw new Error(`smart_resize: pixel limits [${minPixels}, ${maxPixels}] are not a valid range`);
  const ratio = Math.max(height, width) / Math.min(height, width);
  if (ratio > MAX_ASPECT_RATIO)
    throw new Error(`image aspect ratio ${ratio.toFixed(1)} (${width}x${height}) exceeds ${MAX_ASPECT_RATIO}, which Qwen2.5-VL cannot process`);
  let h = Math.max(factor, roundHalfEven(height / factor) * factor);
  let w = Math.max(factor, roundHalfEven(width / factor) * factor);
  if (h * w > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    h = Math.max(factor, Math.floor(height / beta / factor) * factor);
    w = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (h * w < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    h = Math.ceil((height * beta) / factor) * factor;
    w = Math.ceil((width * beta) / factor) * factor;
  }
  return [h, w];
}
