// Generates (or re-uses) the checkpoint `vreflect bench train` trains: the truncated-vocabulary 7B-shaped model of
// train_model.ts with random bf16 weights, sharded like a released checkpoint, plus config.json and
// preprocessor_config.json (both engines load it: ours through src/model, PyTorch through from_pretrained). No
// tokenizer: the benchmark's batches are synthetic token ids (train_batch.ts), so none is needed. A marker file
// written last says the directory is complete.
import * as fs from 'fs';
import * as path from 'path';

import { preprocessorConfigJson } from './checkpoint_files';
import { numel } from './model_shape';
import { benchCacheDir, clearForRegeneration, MarkerBase, reusableMarker, writeRandomBf16Shards } from './random_checkpoint';
import { TrainBenchShape, trainConfigJson, trainTensorSpecs } from './train_model';

export const TRAIN_MARKER = 'vreflect-bench-train.json';
const GENERATOR_VERSION = 1;

export interface TrainCheckpointInfo {
  dir: string;
  shape: TrainBenchShape;
  parameters: number;
  weightBytes: number;
  generated: boolean;
  seconds: number;
}

type Marker = MarkerBase<TrainBenchShape>;

/** benchCacheDir()/bench-train-7b-L<llm>-V<vit>-v<vocab>. */
export function defaultTrainCheckpointDir(s: TrainBenchShape): string {
  return path.join(benchCacheDir(), `bench-train-7b-L${s.llmLayers}-V${s.vitLayers}-v${s.vocab}`);
}

export function ensureTrainCheckpoint(req: {
  dir: string;
  shape: TrainBenchShape;
  seed?: number;
  force?: boolean;
  maxShardBytes?: number;
  onProgress?: (done: number, total: number) => void;
}): TrainCheckpointInfo {
  const t0 = Date.now();
  const seed = req.seed ?? 1234;
  const dir = path.resolve(req.dir);
  const old = req.force ? undefined : reusableMarker<TrainBenchShape, Marker>(dir, TRAIN_MARKER, GENERATOR_VERSION, req.shape, seed);
  if (old) return { dir, shape: req.shape, parameters: old.parameters, weightBytes: old.weightBytes, generated: false, seconds: (Date.now() - t0) / 1000 };

  clearForRegeneration(dir, TRAIN_MARKER);
  const specs = trainTensorSpecs(req.shape);
  const put = (name: string, v: unknown) => fs.writeFileSync(path.join(dir, name), JSON.stringify(v, null, 2) + '\n');
  put('config.json', trainConfigJson(req.shape));
  put('preprocessor_config.json', preprocessorConfigJson());
  const parameters = specs.reduce((a, t) => a + numel(t.shape), 0);
  const { shards, weightBytes } = writeRandomBf16Shards({ dir, specs, seed, parameters, maxShardBytes: req.maxShardBytes, onProgress: req.onProgress });
  const marker: Marker = { version: GENERATOR_VERSION, shape: req.shape, seed, parameters, weightBytes, shards };
  put(TRAIN_MARKER, marker);
  return { dir, shape: req.shape, parameters, weightBytes, generated: true, seconds: (Date.now() - t0) / 1000 };
}
