// Generates (or re-uses) the checkpoint `vreflect bench train` trains: the truncated-vocabulary 7B-shaped model of
// train_model.ts with random bf16 weights, sharded like a released checkpoint, plus config.json and
// preprocessor_config.json (both engines load it: ours through src/model, PyTorch through from_pretrained). No
// tokenizer: the benchmark's batches are synthetic token ids (train_batch.ts), so none is needed. A marker file
// written last says the directory is complete.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { planShards } from './checkpoint';
import { preprocessorConfigJson } from './checkpoint_files';
import { numel } from './model_shape';
import { Bf16RandomSource, produceBf16 } from './random_weights';
import { TensorEntry, writeSafetensorsStream } from '../model/safetensors_writer';
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

interface Marker {
  version: number;
  shape: TrainBenchShape;
  seed: number;
  parameters: number;
  weightBytes: number;
  shards: { file: string; bytes: number }[];
}

/** $VREFLECT_BENCH_DIR, else ~/.cache/vreflect, then bench-train-7b-L<llm>-V<vit>-v<vocab>. */
export function defaultTrainCheckpointDir(s: TrainBenchShape): string {
  const base = process.env.VREFLECT_BENCH_DIR || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'vreflect');
  return path.join(base, `bench-train-7b-L${s.llmLayers}-V${s.vitLayers}-v${s.vocab}`);
}

function reusable(dir: string, s: TrainBenchShape, seed: number): Marker | undefined {
  let m: Marker;
  try {
    m = JSON.parse(fs.readFileSync(path.join(dir, TRAIN_MARKER), 'utf8')) as Marker;
  } catch {
    return undefined;
  }
  if (m.version !== GENERATOR_VERSION || m.seed !== seed || JSON.stringify(m.shape) !== JSON.stringify(s)) return undefined;
  for (const f of m.shards) {
    const st = fs.statSync(path.join(dir, f.file), { throwIfNoEntry: false });
    if (!st || st.size !== f.bytes) return undefined;
  }
  return m;
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
  const old = req.force ? undefined : reusable(dir, req.shape, seed);
  if (old) return { dir, shape: req.shape, parameters: old.parameters, weightBytes: old.weightBytes, generated: false, seconds: (Date.now() - t0) / 1000 };

  fs.mkdirSync(dir, { recursive: true });
  fs.rmSync(path.join(dir, TRAIN_MARKER), { force: true });
  for (const f of fs.readdirSync(dir)) if (/^model(-\d+-of-\d+)?\.safetensors(\.\d+\.partial)?$/.test(f)) fs.rmSync(path.join(dir, f));
  fs.rmSync(path.join(dir, 'model.safetensors.index.json'), { force: true });

  const specs = trainTensorSpecs(req.shape);
  const put = (name: string, v: unknown) => fs.writeFileSync(path.join(dir, name), JSON.stringify(v, null, 2) + '\n');
  put('config.json', trainConfigJson(req.shape));
  put('preprocessor_config.json', preprocessorConfigJson());

  const plan = planShards(specs, req.maxShardBytes ?? 2 * 1024 ** 3);
  const parameters = specs.reduce((a, t) => a + numel(t.shape), 0);
  const weightBytes = parameters * 2;
  const source = new Bf16RandomSource(seed);
  const shards: { file: string; bytes: number }[] = [];
  const weightMap: Record<string, string> = {};
  let done = 0;
  plan.forEach((group, i) => {
    const file = plan.length === 1 ? 'model.safetensors' : `model-${String(i + 1).padStart(5, '0')}-of-${String(plan.length).padStart(5, '0')}.safetensors`;
    const entries: TensorEntry[] = group.map((t) => ({ name: t.name, dtype: 'BF16', shape: t.shape }));
    const byName = new Map(group.map((t) => [t.name, t]));
    const bytes = writeSafetensorsStream(path.join(dir, file), entries, (e, write) =>
      produceBf16(byName.get(e.name)!, source, (chunk) => {
        write(chunk);
        done += chunk.byteLength;
        req.onProgress?.(done, weightBytes);
      }),
    );
    for (const e of entries) weightMap[e.name] = file;
    shards.push({ file, bytes });
  });
  if (plan.length > 1) {
    const sorted = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]]));
    put('model.safetensors.index.json', { metadata: { total_size: weightBytes, total_parameters: parameters }, weight_map: sorted });
  }
  const marker: Marker = { version: GENERATOR_VERSION, shape: req.shape, seed, parameters, weightBytes, shards };
  put(TRAIN_MARKER, marker);
  return { dir, shape: req.shape, parameters, weightBytes, generated: true, seconds: (Date.now() - t0) / 1000 };
}
