// Upstream's image-path mapping (benchmarks.md §6.2), with a stubbed file system.
import { mapImagePath } from '../../../src/data/image_path';

const F = '/imgs';
const fsWith = (...files: string[]) => (p: string) => files.includes(p);
const none = fsWith();

test.each([
  ['viscot/flickr30k/2618322793.jpg', 'flickr30k', '/imgs/flickr30k/flickr30k-images/2618322793.jpg'],
  ['viscot/gqa/sub/dir/1.jpg', 'gqa', '/imgs/gqa/images/1.jpg'],
  ['viscot/textcap/a.jpg', 'textcap', '/imgs/textvqa/train_images/a.jpg'],
  ['viscot/textvqa/a.jpg', 'textvqa', '/imgs/textvqa/train_images/a.jpg'],
  ['viscot/v7w/v.jpg', 'v7w', '/imgs/visual7w/images/v.jpg'],
  ['viscot/vsr/v.jpg', 'vsr', '/imgs/vsr/images/v.jpg'],
  ['viscot/docvqa/d/e.png', 'docvqa', '/imgs/docvqa/e.png'],
  ['viscot/coco/train2017/c.jpg', 'coco', '/imgs/coco/c.jpg'],
  ['viscot/cub/001.Black_footed_Albatross/x.jpg', 'cub', '/imgs/cub/CUB_200_2011/images/001.Black_footed_Albatross/x.jpg'],
  ['viscot/newset/deep/f.jpg', 'newset', '/imgs/newset/f.jpg'],
  // the dataset name comes from the path when the record has none
  ['viscot/gqa/1.jpg', undefined, '/imgs/gqa/images/1.jpg'],
  ['plain/p1.png', undefined, '/imgs/plain/p1.png'],
  ['a/b/c.jpg', undefined, '/imgs/a/c.jpg'],
  ['lonely.jpg', undefined, '/imgs/lonely.jpg'],
  // a record's dataset that is not the path's first component keeps the whole path's basename
  ['other/x.jpg', 'gqa', '/imgs/gqa/images/x.jpg'],
  ['http://example.com/x.jpg', 'gqa', 'http://example.com/x.jpg'],
])('%s (%s) -> %s', (p, ds, want) => {
  expect(mapImagePath(p, F, ds, none)).toBe(want);
});

test('an absolute path that exists is kept; a missing one goes through the mapping', () => {
  expect(mapImagePath('/data/x.jpg', F, 'gqa', fsWith('/data/x.jpg'))).toBe('/data/x.jpg');
  expect(mapImagePath('/data/x.jpg', F, 'gqa', none)).toBe('/imgs/gqa/images/x.jpg');
});

test('openimages: the folder itself, then train_0..train_5, else null', () => {
  expect(mapImagePath('viscot/openimages/o.jpg', F, 'openimages', fsWith('/imgs/openimages/o.jpg'))).toBe('/imgs/openimages/o.jpg');
  expect(mapImagePath('viscot/openimages/o.jpg', F, 'openimages', fsWith('/imgs/openimages/train_5/o.jpg', '/imgs/openimages/train_2/o.jpg'))).toBe('/imgs/openimages/train_2/o.jpg');
  expect(mapImagePath('viscot/openimages/o.jpg', F, 'openimages', none)).toBeNull();
});

test('dude / sroie: viscot/<ds>/, then <ds>/, then (dude) the DUDE train folder, else the first', () => {
  expect(mapImagePath('viscot/sroie/s.png', F, 'sroie', fsWith('/imgs/viscot/sroie/s.png', '/imgs/sroie/s.png'))).toBe('/imgs/viscot/sroie/s.png');
  expect(mapImagePath('viscot/sroie/s.png', F, 'sroie', fsWith('/imgs/sroie/s.png'))).toBe('/imgs/sroie/s.png');
  expect(mapImagePath('viscot/dude/x/d.png', F, 'dude', fsWith('/imgs/dude/DUDE_train-val-test_binaries/images/train/d.png'))).toBe(
    '/imgs/dude/DUDE_train-val-test_binaries/images/train/d.png',
  );
  expect(mapImagePath('viscot/dude/d.png', F, 'dude', none)).toBe('/imgs/viscot/dude/d.png');
  expect(mapImagePath('viscot/sroie/s.png', F, 'sroie', fsWith('/imgs/dude/DUDE_train-val-test_binaries/images/train/s.png'))).toBe('/imgs/viscot/sroie/s.png');
});
