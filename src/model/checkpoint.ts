// Opens a checkpoint directory's safetensors (one file or shards via model.safetensors.index.json), resolves
// both tensor spellings to the canonical legacy names, and checks every tensor against the config's shapes.
// The result is a table of byte ranges the native engine maps; no tensor data is read here.
import * as fs from 'fs';
import * as path from 'path';

import { ModelConfig } from './config';
import { isObject, readJsonObject } from './json_file';
import { DTYPE_BYTES, readSafetensorsHeader, SafetensorsHeader } from './safetensors';
import { canonicalTensorName, expectedTensorShapes, LVR_MODULE_PREFIXES } from './tensor_names';

export const WEIGHT_DTYPES = new Set(['F32', 'BF16', 'F16']);

export interface CheckpointTensor {
  /** canonical legacy name (`visual.*`, `model.*`, `lm_head.weight`) */
  name: string;
  /** the name as stored in the file */
  storedName: string;
  /** absolute path of the safetensors file */
  file: string;
  /** absolute byte offset of the first byte in the file */
  offset: number;
  nbytes: number;
  dtype: string;
  shape: number[];
}

export interface Checkpoint {
  dir: string;
  files: string[];
  /** every tensor the engine needs, in the config's order */
  tensors: CheckpointTensor[];
  /** tensors the engine does not need (BCM/DAC modules, a tied lm_head, anything else) */
  extra: CheckpointTensor[];
  /** extra tensors that belong to V-Reflection's BCM/DAC modules */
  lvrModules: string[];
  dtypes: Set<string>;
}

const shapeStr = (s: number[]) => `[${s.join(', ')}]`;

/** Lists the weight files: through the index when there is one, else model.safetensors. */
function weightFiles(dir: string): { files: string[]; index?: Map<string, string>; indexFile?: string } {
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(indexFile)) {
    const j = readJsonObject(indexFile);
    if (!isObject(j.weight_map)) throw new Error(`${indexFile}: missing weight_map object`);
    const index = new Map<string, string>();
    const files = new Set<string>();
    for (const [name, shard] of Object.entries(j.weight_map)) {
      if (typeof shard !== 'string' || !shard || shard.includes('/') || shard.includes('\\') || shard === '..' || shard === '.')
        throw new Error(`${indexFile}: weight_map entry for ${name} is not a file name in the same folder: ${JSON.stringify(shard)}`);
      const abs = path.join(dir, shard);
      index.set(name, abs);
      files.add(abs);
    }
    if (!files.size) throw new Error(`${indexFile}: weight_map is empty`);
    for (const f of files) if (!fs.existsSync(f)) throw new Error(`${indexFile} names ${path.basename(f)}, which does not exist in ${dir}`);
    return { files: [...files].sort(), index, indexFile };
  }
  const single = path.join(dir, 'model.safetensors');
  if (fs.existsSync(single)) return { files: [single] };
  throw new Error(`no model.safetensors or model.safetensors.index.json in ${dir}`);
}

/** Reads every header and checks every tensor against the config; throws naming the first problem. */
export function openCheckpoint(dir: string, cfg: ModelConfig): Checkpoint {
  const absDir = path.resolve(dir);
  const { files, index, indexFile } = weightFiles(absDir);
  const headers = new Map<string, SafetensorsHeader>();
  for (const f of files) headers.set(f, readSafetensorsHeader(f));

  // Index entries must exist in the shard they name.
  if (index) {
    for (const [name, f] of index)
      if (!headers.get(f)!.tensors.has(name)) throw new Error(`${indexFile} places ${name} in ${path.basename(f)}, which does not contain it`);
  }

  const byName = new Map<string, CheckpointTensor>();
  for (const [f, h] of headers) {
    for (const [stored, t] of h.tensors) {
      // With an index, a tensor that the index places in another shard is a duplicate; one it omits is accepted.
      if (index && index.has(stored) && index.get(stored) !== f)
        throw new Error(`tensor ${stored} is stored in both ${path.basename(index.get(stored)!)} and ${path.basename(f)}`);
      const name = canonicalTensorName(stored);
      const prev = byName.get(name);
      if (prev)
        throw new Error(`tensor ${name} appears twice: as ${prev.storedName} in ${path.basename(prev.file)} and as ${stored} in ${path.basename(f)}`);
      byName.set(name, {
        name, storedName: stored, file: f, offset: h.dataStart + t.begin, nbytes: t.end - t.begin, dtype: t.dtype, shape: t.shape,
      });
    }
  }

  const expected = expectedTensorShapes(cfg);
  const tensors: CheckpointTensor[] = [];
  for (const [name, shape] of expected) {
    const t = byName.get(name);
    if (!t) {
      const hint = name === 'lm_head.weight' ? ' (config.json says tie_word_embeddings is false)' : '';
      throw new Error(`checkpoint ${absDir}: missing tensor ${name}${hint}`);
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      throw new Error(`checkpoint: tensor ${t.storedName} has shape ${shapeStr(t.shape)}, expected ${shapeStr(shape)} from config.json`);
    if (!WEIGHT_DTYPES.has(t.dtype))
      throw new Error(`checkpoint: tensor ${t.storedName} has dtype ${t.dtype}, expected F32, BF16 or F16`);
    if (t.offset % DTYPE_BYTES[t.dtype])
      throw new Error(`checkpoint: tensor ${t.storedName} starts at byte ${t.offset} of ${t.file}, not aligned to its element size (re-save the file)`);
    tensors.push(t);
  }

  // Unneeded tensors are allowed, except layers/blocks beyond the config's counts: those mean config and
  // weights disagree, which would otherwise silently drop part of the model.
  const extra = [...byName.values()].filter((t) => !expected.has(t.name));
  for (const t of extra) {
    const layer = /^model\.layers\.(\d+)\./.exec(t.name);
    if (layer && Number(layer[1]) >= cfg.text.layers)
      throw new Error(`checkpoint: tensor ${t.storedName} belongs to layer ${layer[1]}, but config.json has num_hidden_layers ${cfg.text.layers}`);
    const block = /^visual\.blocks\.(\d+)\./.exec(t.name);
    if (block && Number(block[1]) >= cfg.vision.depth)
      throw new Error(`checkpoint: tensor ${t.storedName} belongs to vision block ${block[1]}, but config.json has vision_config.depth ${cfg.vision.depth}`);
  }
  return {
    dir: absDir,
    files,
    tensors,
    extra,
    lvrModules: extra.filter((t) => LVR_MODULE_PREFIXES.some((p) => t.name.startsWith(p))).map((t) => t.name),
    dtypes: new Set(tensors.map((t) => t.dtype)),
  };
}
