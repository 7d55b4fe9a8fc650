// The real training image pipeline (decode + smart_resize with the training bounds + native resize/patchify):
// sizes worked out by hand (method.md §4.1, Appendix B). Needs the native addon (build/Release or
// VREFLECT_ADDON); without it the suite is reported as skipped.
import * as path from 'path';

import { checkBatch } from '../../../src/data/batch_check';
import { checkPixelBounds, makeImageLoader } from '../../../src/data/images';
import { TrainDataLoader } from '../../../src/data/loader';
import { loadTokenizer } from '../../../src/model/tokenizer';
import { SampleSkip } from '../../../src/data/skips';
import { preprocessImage } from '../../../src/image/preprocess';
import { addonPath } from '../../../src/native/addon';
import { FIXTURES, TINY_MODEL } from './helpers';

let haveAddon = true;
try {
  addonPath();
} catch {
  haveAddon = false;
}
const describeAddon = haveAddon ? describe : describe.skip;
const IMG = path.join(FIXTURES, 'images');

test('pixel bounds are checked with the flag names', () => {
  expect(() => checkPixelBounds(0, 10)).toThrow(/--image-min-pixels must be a positive integer, got 0/);
  expect(() => checkPixelBounds(100, 99)).toThrow(/--image-max-pixels must be an integer >= --image-min-pixels \(100\), got 99/);
});

describeAddon('training image loader (native addon)', () => {
  test('README image 500x375 with 100352..4014080 px -> 504x364, grid (1, 26, 36), [936, 1176]', async () => {
    const load = makeImageLoader();
    const im = await load(path.join(IMG, 'flickr30k/flickr30k-images/2618322793.jpg'));
    expect(im.grid).toEqual([1, 26, 36]);
    expect(im.pixelValues.length).toBe(936 * 1176);
    // the loader is the inference preprocessing with the training bounds, nothing else
    const ref = await preprocessImage(path.join(IMG, 'flickr30k/flickr30k-images/2618322793.jpg'), { minPixels: 100352, maxPixels: 4014080 });
    expect(Buffer.from(im.pixelValues.buffer).equals(Buffer.from(ref.pixelValues.buffer))).toBe(true);
  });

  test('a small image is scaled up to at least 128 merged tokens: 84x56 -> 392x280, grid (1, 20, 28)', async () => {
    // 84x56 rounds to 84x56 = 4704 px < 100352: beta = sqrt(100352 / 4704) = 4.6188;
    // h = ceil(56 * 4.6188 / 28) * 28 = 280, w = ceil(84 * 4.6188 / 28) * 28 = 392
    const im = await makeImageLoader()(path.join(IMG, 'gqa/images/g1.png'));
    expect(im.grid).toEqual([1, 20, 28]);
    expect(im.pixelValues.length).toBe(560 * 1176);
  });

  test('--image-max-pixels caps the size: 500x375 with max 50176 -> 252x168 (grid 1, 12, 18)', async () => {
    // 504 x 364 > 50176: beta = sqrt(187500 / 50176) = 1.9331; h = floor(375 / 1.9331 / 28 = 6.93) * 28 = 168,
    // w = floor(500 / 1.9331 / 28 = 9.24) * 28 = 252
    const im = await makeImageLoader({ minPixels: 3136, maxPixels: 50176 })(path.join(IMG, 'flickr30k/flickr30k-images/2618322793.jpg'));
    expect(im.grid).toEqual([1, 12, 18]);
  });

  test('missing and undecodable files are counted skips', async () => {
    const load = makeImageLoader();
    await expect(load(path.join(IMG, 'nope.png'))).rejects.toMatchObject({ reason: 'missing_image' });
    const err = await load(path.join(IMG, 'mydata/corrupt.jpg')).catch((e) => e);
    expect(err).toBeInstanceOf(SampleSkip);
    expect(err.reason).toBe('undecodable_image');
    expect(err.detail).toMatch(/corrupt\.jpg/);
  });

  test('the loader with the real pipeline: the README record first, 234 image tokens, a consistent batch', async () => {
    const tokenizer = await loadTokenizer(TINY_MODEL);
    const l = TrainDataLoader.open({ dataPath: path.join(FIXTURES, 'meta.json'), tokenizer, stage: 2, shuffle: false });
    const b = await l.next();
    expect(Array.from(b.sampleIds)).toEqual([0]);
    expect(Array.from(b.imageGrids)).toEqual([1, 26, 36]);
    expect(b.numVisualTokens).toBe(234);
    expect(b.numBoxes).toBe(1);
    expect(b.cuBoxTokens[1]).toBe(28);
    checkBatch(b, { imagePad: l.ids.imagePad, lvr: l.ids.lvr });
  });
});
