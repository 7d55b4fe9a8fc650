// The benchmark's input: a synthetic RGB PNG (smooth gradients, a disc and stripes; deterministic), 448x448 by
// default (`--image-size`), and a question. 448x448 needs no resize at the released limits: 32x32 patches -> 256
// image tokens, and with the chat template and this question the prompt is 305 tokens. 896x896: 1024 image
// tokens, 1073 prompt tokens (HR-Bench / V* inputs run to thousands).
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';

export const BENCH_IMAGE_SIZE = 448;
// 28 tokens: with the system turn, 256 image pads and the turn markers the prompt is 305 tokens.
export const BENCH_QUESTION =
  'Describe this picture carefully: which shapes and colors do you see, where are they placed, and what could the scene show? Answer briefly.';

export function benchImageRgb(size = BENCH_IMAGE_SIZE): Buffer {
  const rgb = Buffer.alloc(size * size * 3);
  const c = size / 2;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 3;
      const inDisc = (x - c * 0.7) ** 2 + (y - c * 0.8) ** 2 < (size * 0.18) ** 2;
      const stripe = Math.floor((x + y) / 24) % 2 === 0 && x > size * 0.6;
      rgb[i] = inDisc ? 220 : Math.round(127 + 100 * Math.sin(x / 37));
      rgb[i + 1] = stripe ? 30 : Math.round(127 + 100 * Math.cos(y / 29));
      rgb[i + 2] = Math.round(((x ^ y) & 0x3f) + 120);
    }
  }
  return rgb;
}

/** `--image-size`: a multiple of 28 (one merged 2x2 patch block), so the processor keeps the size exactly. */
export function checkBenchImageSize(size: number): string | undefined {
  if (!Number.isInteger(size) || size < 56 || size > 3584 || size % 28 !== 0)
    return `--image-size must be a multiple of 28 between 56 and 3584, got ${size}`;
  return undefined;
}

/** Image tokens the LLM sees for a size x size image: (size / 28)^2. */
export function benchImageTokens(size: number): number {
  return (size / 28) ** 2;
}

/** Writes the image (size x size) into `dir` once and returns its path. */
export async function ensureBenchImage(dir: string, size = BENCH_IMAGE_SIZE): Promise<string> {
  const file = path.join(dir, `bench-image-${size}.png`);
  if (!fs.existsSync(file)) {
    const tmp = file + '.partial';
    await sharp(benchImageRgb(size), { raw: { width: size, height: size, channels: 3 } }).png().toFile(tmp);
    fs.renameSync(tmp, file);
  }
  return file;
}
