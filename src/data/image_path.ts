// Upstream's image-path mapping (src/dataset/data_utils.py::map_image_path; benchmarks.md §6.2): the record's
// path "viscot/<dataset>/<...>/<file>" becomes a file under the image folder, laid out as the Visual-CoT
// image sources are distributed.
//
// Rules, in upstream's order:
// 1. an absolute path that exists is used as is; a path starting with "http" is returned as is (we cannot fetch
//    it, so it later counts as a missing image);
// 2. a leading "viscot/" is removed;
// 3. the dataset name is the record's `dataset` field (its "<dataset>/" prefix is removed from the path), else
//    the path's first component (removed too);
// 4. it maps to a sub-folder: cub -> cub/CUB_200_2011/images, flickr30k -> flickr30k/flickr30k-images,
//    gqa -> gqa/images, textcap|textvqa -> textvqa/train_images, v7w -> visual7w/images, vsr -> vsr/images,
//    anything else -> the name itself;
// 5. cub keeps the remaining sub-path; openimages looks for the basename in openimages/ then
//    openimages/train_0..train_5 (none found: null); dude/sroie try viscot/<ds>/<file>, <ds>/<file>, and for dude
//    dude/DUDE_train-val-test_binaries/images/train/<file>, falling back to the first; everything else uses only
//    the basename.
// Deviation: a path with no dataset and no "/" (upstream: os.path.join with None, a TypeError) maps to
// <image_folder>/<file>. Note that, as upstream, records of other datasets keep only the basename: a record
// without `dataset` whose image is "a/b/c.jpg" maps to <image_folder>/a/c.jpg.
import * as fs from 'fs';
import * as path from 'path';

const DATASET_FOLDERS: Record<string, string> = {
  cub: 'cub/CUB_200_2011/images',
  docvqa: 'docvqa',
  flickr30k: 'flickr30k/flickr30k-images',
  gqa: 'gqa/images',
  infographicsvqa: 'infographicsvqa',
  openimages: 'openimages',
  textcap: 'textvqa/train_images',
  textvqa: 'textvqa/train_images',
  v7w: 'visual7w/images',
  vsr: 'vsr/images',
  sroie: 'sroie',
  dude: 'dude',
  coco: 'coco',
};

/** posix basename, as os.path.basename on Linux (paths in the records use "/") */
const basename = (p: string): string => p.slice(p.lastIndexOf('/') + 1);

/** The file an image entry refers to, or null when upstream would return None (openimages not found). */
export function mapImagePath(imagePath: string, imageFolder: string, datasetName?: string, exists: (p: string) => boolean = fs.existsSync): string | null {
  if (path.isAbsolute(imagePath) && exists(imagePath)) return imagePath;
  if (imagePath.startsWith('http')) return imagePath;
  let p = imagePath.startsWith('viscot/') ? imagePath.slice(7) : imagePath;
  let ds = datasetName;
  if (ds === undefined) {
    const slash = p.indexOf('/');
    if (slash >= 0) {
      ds = p.slice(0, slash);
      p = p.slice(slash + 1);
    }
  } else if (p.startsWith(`${ds}/`)) p = p.slice(ds.length + 1);
  if (ds === undefined) return path.join(imageFolder, basename(p));

  const mapped = DATASET_FOLDERS[ds] ?? ds;
  const file = basename(p);
  if (ds === 'cub') return path.join(imageFolder, mapped, p);
  if (ds === 'openimages') {
    const base = path.join(imageFolder, mapped);
    const direct = path.join(base, file);
    if (exists(direct)) return direct;
    for (let k = 0; k < 6; k++) {
      const candidate = path.join(base, `train_${k}`, file);
      if (exists(candidate)) return candidate;
    }
    return null;
  }
  if (ds === 'dude' || ds === 'sroie') {
    const viscot = path.join(imageFolder, 'viscot', ds, file);
    if (exists(viscot)) return viscot;
    const direct = path.join(imageFolder, mapped, file);
    if (exists(direct)) return direct;
    if (ds === 'dude') {
      const train = path.join(imageFolder, 'dude', 'DUDE_train-val-test_binaries', 'images', 'train', file);
      if (exists(train)) return train;
    }
    return viscot;
  }
  return path.join(imageFolder, mapped, file);
}
