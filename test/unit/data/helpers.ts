// Shared test helpers for the data pipeline: a stand-in image loader that needs no native addon (it reads the
// image size with sharp and applies smart_resize, then fills pixel rows with a marker), and fixture paths.
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';

import { smartResize } from '../../../src/image/smart_resize';
import type { ImageLoader } from '../../../src/data/images';
import { SampleSkip } from '../../../src/data/skips';

export const FIXTURES = path.join(__dirname, '../../fixtures/data');
export const TINY_MODEL = path.join(__dirname, '../../golden/models/tiny-flat');
export const PATCH_DIM = 1176;

/** A number that identifies a file name (stable across loaders). */
export const fileMark = (file: string): number => [...path.basename(file)].reduce((a, c) => (a * 31 + c.charCodeAt(0)) % 100003, 7);

/**
 * smart_resize sizes like the real loader, without the addon. Row r of an image holds fileMark(file) in its
 * first float and r in its second, so collation can be checked.
 */
export function fakeImageLoader(minPixels = 100352, maxPixels = 4014080): ImageLoader & { files: string[] } {
  const files: string[] = [];
  const load = async (file: string) => {
    if (!fs.existsSync(file)) throw new SampleSkip('missing_image', file);
    let meta;
    try {
      meta = await sharp(file).metadata();
    } catch (e) {
      throw new SampleSkip('undecodable_image', `cannot decode image ${file}: ${(e as Error).message}`);
    }
    const [h, w] = smartResize(meta.height!, meta.width!, { factor: 28, minPixels, maxPixels });
    const grid: [number, number, number] = [1, h / 14, w / 14];
    const rows = grid[1] * grid[2];
    files.push(file);
    const pixelValues = new Float32Array(rows * PATCH_DIM);
    for (let r = 0; r < rows; r++) {
      pixelValues[r * PATCH_DIM] = fileMark(file);
      pixelValues[r * PATCH_DIM + 1] = r;
    }
    return { pixelValues, grid };
  };
  return Object.assign(load, { files });
}

export const range = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, i) => a + i);
