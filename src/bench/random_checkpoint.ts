// What the two benchmark checkpoints (checkpoint.ts: `bench infer`, train_checkpoint.ts: `bench train`) share:
// where they are cached, the completeness marker (written last, so an interrupted run never looks complete), and
// the random bf16 weights written as a released checkpoint is laid out (safetensors shards of whole tensors in
// name order + model.safetensors.index.json when there is more than one).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { TensorEntry, writeSafetensorsStream } from '../model/safetensors_writer';
import { numel, TensorSpec } from './model_shape';
import { Bf16RandomSource, produceBf16 } from './random_weights';

/** $VREFLECT_BENCH_DIR, else $XDG_CACHE_HOME/vreflect, else ~/.cache/vreflect. */
export function benchCacheDir(): string {
  return process.env.VREFLECT_BENCH_DIR || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'vreflect');
}

export interface ShardFile {
  file: string;
  bytes: number;
}

/** The marker's common fields; each checkpoint adds its own shape type. */
export interface MarkerBase<S> {
  version: number;
  shape: S;
  seed: number;
  parameters: number;
  weightBytes: number;
  shards: ShardFile[];
}

/** The marker of a complete directory for this request (same generator version, shape and seed, every shard of its size), else undefined. */
export function reusableMarker<S, M extends MarkerBase<S>>(dir: string, markerName: string, version: number, shape: S, seed: number): M | undefined {
  let m: M;
  try {
    m = JSON.parse(fs.readFileSync(path.join(dir, markerName), 'utf8')) as M;
  } catch {
    return undefined;
  }
  if (m.version !== version || m.seed !== seed || JSON.stringify(m.shape) !== JSON.stringify(shape)) return undefined;
  for (const s of m.shards) {
    const st = fs.statSync(path.join(dir, s.file), { throwIfNoEntry: false });
    if (!st || st.size !== s.bytes) return undefined;
  }
  return m;
}

/** Creates dir and removes the marker first (from here on an interrupted run leaves nothing that looks complete), then old weights. */
export function clearForRegeneration(dir: string, markerName: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.rmSync(path.join(dir, markerName), { force: true });
  for (const f of fs.readdirSync(dir)) if (/^model(-\d+-of-\d+)?\.safetensors(\.\d+\.partial)?$/.test(f)) fs.rmSync(path.join(dir, f));
  fs.rmSync(path.join(dir, 'model.safetensors.index.json'), { force: true });
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

const pad5 = (n: number) => String(n).padStart(5, '0');

/**
 * Writes every tensor of `specs` as random bf16 (seeded) into shards of at most maxShardBytes, and the index when
 * there is more than one shard. Returns the shard files and the total weight bytes.
 */
export function writeRandomBf16Shards(req: {
  dir: string;
  specs: TensorSpec[];
  seed: number;
  parameters: number;
  maxShardBytes?: number;
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** The random values (default: a Bf16RandomSource of `seed`; tests pass one with a small pool). */
  source?: Bf16RandomSource;
}): { shards: ShardFile[]; weightBytes: number } {
  const plan = planShards(req.specs, req.maxShardBytes ?? 2 * 1024 ** 3);
  const weightBytes = req.specs.reduce((s, t) => s + numel(t.shape) * 2, 0);
  const source = req.source ?? new Bf16RandomSource(req.seed);
  const weightMap: Record<string, string> = {};
  const shards: ShardFile[] = [];
  let done = 0;
  plan.forEach((group, i) => {
    const file = plan.length === 1 ? 'model.safetensors' : `model-${pad5(i + 1)}-of-${pad5(plan.length)}.safetensors`;
    const entries: TensorEntry[] = group.map((t) => ({ name: t.name, dtype: 'BF16', shape: t.shape }));
    const byName = new Map(group.map((t) => [t.name, t]));
    const bytes = writeSafetensorsStream(path.join(req.dir, file), entries, (e, write) =>
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
    const sortedMap = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]]));
    const index = { metadata: { total_size: weightBytes, total_parameters: req.parameters }, weight_map: sortedMap };
    fs.writeFileSync(path.join(req.dir, 'model.safetensors.index.json'), JSON.stringify(index, null, 2) + '\n');
  }
  return { shards, weightBytes };
}
