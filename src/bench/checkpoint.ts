// Generates (or re-uses) the benchmark checkpoint directory: a Qwen2.5-VL-7B-shaped model with few layers and
// random bf16 weights, sharded like a released checkpoint (safetensors shards + model.safetensors.index.json),
// plus tokenizer/processor/generation files. A marker file written last says the directory is complete.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { writeCheckpointTextFiles } from './checkpoint_files';
import { configJson, numel, parameterCount, Qwen7BShape, tensorSpecs, TensorSpec } from './model_shape';
import { Bf16RandomSource, produceBf16 } from './random_weights';
import { TensorEntry, writeSafetensorsStream } from '../model/safetensors_writer';

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

/** Default location: $VREFLECT_BENCH_DIR, else ~/.cache/vreflect/bench-7b-L<llm>-V<vit>. */
export function defaultCheckpointDir(shape: Qwen7BShape): string {
  const base = process.env.VREFLECT_BENCH_DIR || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'vreflect');
  return path.join(base, `bench-7b-L${shape.llmLayers}-V${shape.vitLayers}`);
}

interface Marker {
  version: number;
  shape: Qwen7BShape;
  seed: number;
  parameters: number;
  weightBytes: number;
  shards: { file: string; bytes: number }[];
}

function readMarker(dir: string): Marker | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, MARKER), 'utf8')) as Marker;
  } catch {
    return undefined;
  }
}

/** A complete directory for this request: same generator version, shape and seed, every shard of its size. */
function reusable(dir: string, shape: Qwen7BShape, seed: number): Marker | undefined {
  const m = readMarker(dir);
  if (!m || m.version !== GENERATOR_VERSION || m.seed !== seed || JSON.stringify(m.shape) !== JSON.stringify(shape)) return undefined;
  for (const s of m.shards) {
    const st = fs.statSync(path.join(dir, s.file), { throwIfNoEntry: false });
    if (!st || st.size !== s.bytes) return undefined;
  }
  return m;
}

/** Groups tensors (in name order, as Python safetensors orders one dtype) into shards of at most maxBytes. */
export function planShards(specs: TensorSpec[], maxBytes: number): TensorSpec[][] {
  const sorted = [...specs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const shards: TensorSpec[][] = [];
  let cur: TensorSpec[] = [];
  let bytes = 0;
  for (const t of sorted) {
    const b = numel(t.shape) * 2;
    if (cur.length && bytes + b > maxBytes) {
      shards.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(t);
    bytes += b;
  }
  if (cur.length) shards.push(cur);
  return shards;
}

export function ensureCheckpoint(req: CheckpointRequest): CheckpointInfo {
  const t0 = Date.now();
  const seed = req.seed ?? 1234;
  const dir = path.resolve(req.dir);
  const existing = req.force ? undefined : reusable(dir, req.shape, seed);
  if (existing) {
    return {
      dir, shape: req.shape, seed, parameters: existing.parameters, weightBytes: existing.weightBytes,
      shards: existing.shards.map((s) => s.file), generated: false, seconds: (Date.now() - t0) / 1000,
    };
  }
  fs.mkdirSync(dir, { recursive: true });
  // Drop a stale marker first: a run interrupted from here on leaves no directory that looks complete.
  fs.rmSync(path.join(dir, MARKER), { force: true });
  for (const f of fs.readdirSync(dir)) if (/^model(-\d+-of-\d+)?\.safetensors(\.\d+\.partial)?$/.test(f)) fs.rmSync(path.join(dir, f));

  const specs = tensorSpecs(req.shape);
  writeCheckpointTextFiles(dir, configJson(req.shape));

  const plan = planShards(specs, req.maxShardBytes ?? 2 * 1024 ** 3);
  const weightBytes = specs.reduce((s, t) => s + numel(t.shape) * 2, 0);
  const source = new Bf16RandomSource(seed);
  const weightMap: Record<string, string> = {};
  const shards: { file: string; bytes: number }[] = [];
  let done = 0;
  plan.forEach((group, i) => {
    const file = plan.length === 1 ? 'model.safetensors' : `model-${pad5(i + 1)}-of-${pad5(plan.length)}.safetensors`;
    const entries: TensorEntry[] = group.map((t) => ({ name: t.name, dtype: 'BF16', shape: t.shape }));
    const byName = new Map(group.map((t) => [t.name, t]));
    const bytes = writeSafetensorsStream(path.join(dir, file), entries, (e, write) => {
      produceBf16(byName.get(e.name)!, source, (chunk) => {
        write(chunk);
        done += chunk.byteLength;
        req.onProgress?.(done, weightBytes);
      });
    });
    for (const e of entries) weightMap[e.name] = file;
    shards.push({ file, bytes });
  });
  if (plan.length > 1) {
    const sortedMap = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]]));
    fs.writeFileSync(
      path.join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: { total_size: weightBytes, total_parameters: parameterCount(req.shape) }, weight_map: sortedMap }, null, 2) + '\n',
    );
  } else {
    fs.rmSync(path.join(dir, 'model.safetensors.index.json'), { force: true });
  }
  const marker: Marker = { version: GENERATOR_VERSION, shape: req.shape, seed, parameters: parameterCount(req.shape), weightBytes, shards };
  fs.writeFileSync(path.join(dir, MARKER), JSON.stringify(marker, null, 2) + '\n');
  return {
    dir, shape: req.shape, seed, parameters: marker.parameters, weightBytes, shards: shards.map((s) => s.file),
    generated: true, seconds: (Date.now() - t0) / 1000,
  };
}

const pad5 = (n: number) => String(n).padStart(5, '0');
