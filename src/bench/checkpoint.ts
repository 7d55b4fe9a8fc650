// Generates (or re-uses) the benchmark checkpoint directory: a Qwen2.5-VL-7B-shaped model with few layers and
// random bf16 weights, sharded like a released checkpoint (safetensors shards + model.safetensors.index.json),
// plus tokenizer/processor/generation files. A marker file written last says the directory is complete.
import * as fs from 'fs';
import * as path from 'path';

import { writeCheckpointTextFiles } from './checkpoint_files';
import { configJson, parameterCount, Qwen7BShape, tensorSpecs } from './model_shape';
import { benchCacheDir, clearForRegeneration, MarkerBase, reusableMarker, writeRandomBf16Shards } from './random_checkpoint';

export const MARKER = 'vreflect-bench.json';
const GENERATOR_VERSION = 1;

export interface CheckpointRequest {
  dir: string;
  shape: Qwen7BShape;
  seed?: number;
  /** Largest shard in bytes (a shard holds whole tensors; one tensor larger than this gets its own shard). */
  maxShardBytes?: number;
  /** Regenerate even when a complete directory for the same request exists. */
  force?: boolean;
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

export interface CheckpointInfo {
  dir: string;
  shape: Qwen7BShape;
  seed: number;
  parameters: number;
  weightBytes: number;
  shards: string[];
  generated: boolean; // false: an existing directory was re-used
  seconds: number;
}

/** Default location: benchCacheDir()/bench-7b-L<llm>-V<vit>. */
export function defaultCheckpointDir(shape: Qwen7BShape): string {
  return path.join(benchCacheDir(), `bench-7b-L${shape.llmLayers}-V${shape.vitLayers}`);
}

type Marker = MarkerBase<Qwen7BShape>;

export function ensureCheckpoint(req: CheckpointRequest): CheckpointInfo {
  const t0 = Date.now();
  const seed = req.seed ?? 1234;
  const dir = path.resolve(req.dir);
  const existing = req.force ? undefined : reusableMarker<Qwen7BShape, Marker>(dir, MARKER, GENERATOR_VERSION, req.shape, seed);
  if (existing) {
    return {
      dir, shape: req.shape, seed, parameters: existing.parameters, weightBytes: existing.weightBytes,
      shards: existing.shards.map((s) => s.file), generated: false, seconds: (Date.now() - t0) / 1000,
    };
  }
  clearForRegeneration(dir, MARKER);
  writeCheckpointTextFiles(dir, configJson(req.shape));
  const parameters = parameterCount(req.shape);
  const { shards, weightBytes } = writeRandomBf16Shards({
    dir, specs: tensorSpecs(req.shape), seed, parameters, maxShardBytes: req.maxShardBytes, onProgress: req.onProgress,
  });
  const marker: Marker = { version: GENERATOR_VERSION, shape: req.shape, seed, parameters, weightBytes, shards };
  fs.writeFileSync(path.join(dir, MARKER), JSON.stringify(marker, null, 2) + '\n');
  return {
    dir, shape: req.shape, seed, parameters, weightBytes, shards: shards.map((s) => s.file),
    generated: true, seconds: (Date.now() - t0) / 1000,
  };
}
