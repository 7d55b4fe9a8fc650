// The `--data-path` meta file (benchmarks.md §6.2): a JSON list of datasets
// {ds_name, data_path, image_folder, ds_type}, read in order. Path rules (issue #5 contract):
// - a relative data_path resolves against the meta file's folder. Upstream resolved it against the working
//   directory, and its own meta file says "data/viscot_...json" from inside data/; so when the meta-relative
//   file does not exist but the cwd-relative one does, that one is used with a warning;
// - `--image-folder` (resolved against the cwd) overrides every entry's image_folder; otherwise a relative
//   image_folder resolves against the meta file's folder, like data_path;
// - ds_name must be unique (upstream asserts it); ds_type is informational (upstream ignores it).
import * as fs from 'fs';
import * as path from 'path';

import { log } from '../util/log';

export interface DatasetSpec {
  dsName: string;
  /** absolute path of the LLaVA JSON file */
  dataPath: string;
  /** absolute image folder */
  imageFolder: string;
  dsType?: string;
}

function fail(file: string, what: string): never {
  throw new Error(`${file}: ${what}`);
}

function resolveDataPath(metaFile: string, p: string, where: string): string {
  if (path.isAbsolute(p)) return p;
  const primary = path.resolve(path.dirname(metaFile), p);
  if (fs.existsSync(primary)) return primary;
  const cwdRelative = path.resolve(p);
  if (fs.existsSync(cwdRelative)) {
    log().warn(`${where}: data_path ${p} does not exist next to the meta file; using ${cwdRelative} (relative to the working directory)`);
    return cwdRelative;
  }
  return primary;
}

/** Reads and checks a meta file; `imageFolder` is the --image-folder override. */
export function readMetaFile(metaFile: string, imageFolder?: string): DatasetSpec[] {
  const file = path.resolve(metaFile);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read the data meta file ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(file, `not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (!Array.isArray(json)) fail(file, 'a data meta file must be a JSON list of {ds_name, data_path, image_folder, ds_type}');
  if (json.length === 0) fail(file, 'the data meta file lists no dataset');
  const names = new Set<string>();
  return json.map((e, i) => {
    const where = `${file} entry ${i}`;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) fail(file, `entry ${i} is not an object`);
    const o = e as Record<string, unknown>;
    for (const k of ['ds_name', 'data_path'])
      if (typeof o[k] !== 'string' || !(o[k] as string).length) fail(file, `entry ${i} needs a non-empty string ${k}`);
    const dsName = o.ds_name as string;
    if (names.has(dsName)) fail(file, `ds_name ${JSON.stringify(dsName)} appears twice`);
    names.add(dsName);
    if (o.ds_type !== undefined && typeof o.ds_type !== 'string') fail(file, `entry ${i} (${dsName}): ds_type must be a string`);
    let folder: string;
    if (imageFolder !== undefined) folder = path.resolve(imageFolder);
    else {
      if (typeof o.image_folder !== 'string' || !o.image_folder.length)
        fail(file, `entry ${i} (${dsName}) has no image_folder; add one or pass --image-folder`);
      folder = path.resolve(path.dirname(file), o.image_folder);
    }
    return { dsName, dataPath: resolveDataPath(file, o.data_path as string, where), imageFolder: folder, dsType: o.ds_type as string | undefined };
  });
}
