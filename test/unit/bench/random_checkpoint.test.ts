// The shared writer of the benchmark checkpoints: shard planning, the index, and the completeness marker.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import type { TensorSpec } from '../../../src/bench/model_shape';
import { clearForRegeneration, MarkerBase, planShards, reusableMarker, writeRandomBf16Shards } from '../../../src/bench/random_checkpoint';
import { Bf16RandomSource } from '../../../src/bench/random_weights';
import { readSafetensorsHeader } from '../../../src/model/safetensors';

const specs: TensorSpec[] = [
  { name: 'b.weight', shape: [8, 16], init: { kind: 'normal', std: 0.02 } },
  { name: 'a.weight', shape: [16, 16], init: { kind: 'normal', std: 0.02 } },
  { name: 'c.bias', shape: [16], init: { kind: 'zeros' } },
] as TensorSpec[];

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-randckpt-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('shards hold whole tensors in name order, at most maxBytes unless one tensor is larger', () => {
  const plan = planShards(specs, 300);
  expect(plan.map((g) => g.map((t) => t.name))).toEqual([['a.weight'], ['b.weight', 'c.bias']]);
  expect(planShards(specs, 1).map((g) => g.length)).toEqual([1, 1, 1]);
});

test('several shards: every tensor readable where the index says, sizes add up', () => {
  const progress: number[] = [];
  const r = writeRandomBf16Shards({ dir, specs, seed: 7, parameters: 400, source: new Bf16RandomSource(7, 1 << 14), maxShardBytes: 300, onProgress: (d) => progress.push(d) });
  expect(r.weightBytes).toBe(400 * 2);
  expect(r.shards.map((s) => s.file)).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'));
  expect(index.metadata).toEqual({ total_size: 800, total_parameters: 400 });
  for (const t of specs) {
    const h = readSafetensorsHeader(path.join(dir, index.weight_map[t.name]));
    const info = h.tensors.get(t.name)!;
    expect(info.dtype).toBe('BF16');
    expect(info.shape).toEqual(t.shape);
  }
  for (const s of r.shards) expect(fs.statSync(path.join(dir, s.file)).size).toBe(s.bytes);
  expect(progress[progress.length - 1]).toBe(800);
});

test('one shard: model.safetensors and no index', () => {
  const r = writeRandomBf16Shards({ dir, specs, seed: 7, parameters: 400, source: new Bf16RandomSource(7, 1 << 14) });
  expect(r.shards.map((s) => s.file)).toEqual(['model.safetensors']);
  expect(fs.existsSync(path.join(dir, 'model.safetensors.index.json'))).toBe(false);
});

test('a marker is reusable only for the same version, shape and seed with every shard of its size', () => {
  const { shards, weightBytes } = writeRandomBf16Shards({ dir, specs, seed: 7, parameters: 400, source: new Bf16RandomSource(7, 1 << 14), maxShardBytes: 300 });
  const shape = { layers: 2 };
  const marker: MarkerBase<typeof shape> = { version: 3, shape, seed: 7, parameters: 400, weightBytes, shards };
  fs.writeFileSync(path.join(dir, 'm.json'), JSON.stringify(marker));
  expect(reusableMarker(dir, 'm.json', 3, shape, 7)).toEqual(marker);
  expect(reusableMarker(dir, 'm.json', 4, shape, 7)).toBeUndefined();
  expect(reusableMarker(dir, 'm.json', 3, { layers: 3 }, 7)).toBeUndefined();
  expect(reusableMarker(dir, 'm.json', 3, shape, 8)).toBeUndefined();
  fs.truncateSync(path.join(dir, shards[1].file), 10);
  expect(reusableMarker(dir, 'm.json', 3, shape, 7)).toBeUndefined();
  clearForRegeneration(dir, 'm.json');
  expect(fs.readdirSync(dir)).toEqual([]);
});
