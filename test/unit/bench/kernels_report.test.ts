// bench kernels: the three sides' JSON (fixtures in the producers' schema, with their differing shape-key
// spellings) merged into one row per kernel/shape/mask, the best implementation per side, and the ratio.
import * as fs from 'fs';
import * as path from 'path';

import { mergeKernelRuns, renderKernelsText } from '../../../src/bench/kernels_report';
import { KernelBench, parseKernelBench, rowKey } from '../../../src/bench/kernels_schema';

const FIX = path.join(__dirname, 'fixtures_kernels');
const load = (f: string) => parseKernelBench(fs.readFileSync(path.join(FIX, f), 'utf8'), f);

const cpu: KernelBench = {
  device: { name: 'test CPU' },
  date: 'd',
  failed: [],
  results: [
    { kernel: 'attention_fwd', shape: { seq: 8192, heads: 28, kv_heads: 4, head_dim: 128 }, dtype: 'fp32', causal: true, ms: 9000, tflops: 0.1, impl: 'vreflect-cpu' },
    { kernel: 'cross_attention_fwd', shape: { queries: 8, keys: 4096, heads: 8, head_dim: 448 }, dtype: 'fp32', ms: 10, tflops: 0.05, impl: 'vreflect-cpu' },
  ],
};

describe('bench kernels report', () => {
  const gpu = load('gpu.json');
  const torch = load('torch.json');
  const rep = mergeKernelRuns([{ side: 'cpu', bench: cpu }, { side: 'gpu', bench: gpu }, { side: 'torch', bench: torch }], 'DATE');

  test('rows line up across spellings (seqlen/num_heads, M/N/K, embed_dim dropped)', () => {
    const attn = rep.rows.find((r) => r.kernel === 'attention_fwd' && r.causal === true)!;
    expect(attn.shape).toEqual({ seq: 8192, heads: 28, kv_heads: 4, head_dim: 128 });
    expect(attn.cpu?.tflops).toBe(0.1);
    expect(attn.gpu?.tflops).toBe(120);
    expect(attn.torch?.tflops).toBe(400);
    expect(attn.ratio).toBeCloseTo(0.3, 10);
    const cross = rep.rows.find((r) => r.kernel === 'cross_attention_fwd')!;
    expect(cross.cpu?.tflops).toBe(0.05);
    expect(cross.gpu?.tflops).toBe(5);
    expect(cross.torch).toBeUndefined();
    expect(cross.ratio).toBeUndefined();
  });

  test('the best GPU implementation wins its cell (cuBLASLt over our kernel)', () => {
    const g = rep.rows.find((r) => r.kernel === 'gemm')!;
    expect(g.gpu?.impl).toBe('cublaslt');
    expect(g.ratio).toBeCloseTo(500 / 625, 10);
  });

  test('causal and non-causal rows stay apart; order: attention fwd first, gemm last', () => {
    expect(rep.rows.filter((r) => r.kernel === 'attention_fwd')).toHaveLength(2);
    expect(rep.rows[0].kernel).toBe('attention_fwd');
    expect(rep.rows[rep.rows.length - 1].kernel).toBe('gemm');
  });

  test('text report: devices, skipped sides, TFLOP/s and ratio columns', () => {
    const r2 = mergeKernelRuns([{ side: 'cpu', bench: cpu }, { side: 'gpu', skipped: 'no NVIDIA driver (libcuda.so.1 not found)' }], 'DATE');
    const text = renderKernelsText(r2);
    expect(text).toMatch(/gpu +skipped: no NVIDIA driver/);
    expect(text).toMatch(/attention_fwd causal +seq=8192 heads=28 kv_heads=4 head_dim=128 +0\.100 \(vreflect-cpu\) +- +- +-/);
    expect(renderKernelsText(rep)).toMatch(/gemm +m=4096 n=3584 k=3584 +- +500 \(cublaslt\) +625 \(torch-matmul\) +0\.80/);
  });

  test('malformed output is a one-line error naming the source', () => {
    expect(() => parseKernelBench('not json', 'vreflect_cuda_bench')).toThrow('vreflect_cuda_bench: output is not one JSON object');
    expect(() => parseKernelBench('{"device":{"name":"x"},"results":[{"kernel":"conv","shape":{},"ms":1,"tflops":1,"impl":"a"}]}', 'torch_kernels.py')).toThrow(
      /torch_kernels.py: results\[0\].kernel "conv" is not one of/,
    );
    expect(() => parseKernelBench('{"device":{"name":"x"},"results":[{"kernel":"gemm","shape":{"m":1},"ms":"1","tflops":1,"impl":"a"}]}', 's')).toThrow(/results\[0\].ms is not a number/);
  });
});

// The producers' real output format: build/vreflect_cuda_bench and scripts_bench/torch_kernels.py in --dry-run
// --quick mode (their exact case lists and shape keys), with made-up timings filled in and one failed case.
describe('bench kernels report on the producers\' own schema', () => {
  const gpu = load('gpu_bench_quick.json');
  const torch = load('torch_kernels_quick.json');
  const rep = mergeKernelRuns([{ side: 'cpu', bench: cpu }, { side: 'gpu', bench: gpu }, { side: 'torch', bench: torch }], 'DATE');

  test('a failed case (ms and tflops null) is kept aside with its error, not a parse error', () => {
    expect(gpu.failed).toEqual([expect.objectContaining({ kernel: 'attention_fwd', error: expect.stringContaining('out of memory') })]);
    expect(torch.failed).toEqual([]);
    expect(rep.sides.find((s) => s.side === 'gpu')!.failed.length).toBe(1);
    expect(renderKernelsText(rep)).toContain('1 failed (first: attention_fwd: out of memory');
  });

  test('every GPU case lines up with the PyTorch case of the same shape (seq_q/heads_q/M spellings)', () => {
    const gpuRows = rep.rows.filter((r) => r.gpu);
    expect(gpuRows.length).toBe(new Set(gpu.results.map(rowKey)).size); // GEMMs: kernel and cuBLASLt share a row
    for (const r of gpuRows) expect(r.torch).toBeDefined();
    const attn = rep.rows.find((r) => r.kernel === 'attention_fwd' && r.causal === true && r.gpu)!;
    expect(Object.keys(attn.shape).sort()).toEqual(['head_dim', 'heads', 'kv_heads', 'seq']);
    const gemm = rep.rows.find((r) => r.kernel === 'gemm')!;
    expect(Object.keys(gemm.shape).sort()).toEqual(['k', 'm', 'n']);
  });
});

// vreflect_cuda_bench's attention_decode cases (one new row after N cached keys): split-KV beside the flash kernel,
// with the GB/s of K/V cache read that the decode step is judged by.
describe('bench kernels attention_decode', () => {
  const row = (impl: string, ms: number, gbs: number | null) =>
    `{"kernel":"attention_decode","shape":{"batch":1,"seq_q":1,"seq_k":16384,"heads_q":28,"heads_kv":4,"head_dim":128},"dtype":"bf16","causal":true,"ms":${ms},"tflops":0.5,"impl":"${impl}","reps":10,"gbs":${gbs}}`;
  const doc = (rows: string[]) => `{"device":{"name":"H100"},"date":"d","results":[${rows.join(',')}]}`;

  test('gbs is parsed and shown beside TFLOP/s; the two implementations share one row', () => {
    const gpu = parseKernelBench(doc([row('split-kv', 0.02, 3000), row('flash-forward', 0.4, 150)]), 'vreflect_cuda_bench');
    expect(gpu.results.map((r) => r.gbs)).toEqual([3000, 150]);
    const rep = mergeKernelRuns([{ side: 'gpu', bench: gpu }], 'DATE');
    const decode = rep.rows.filter((r) => r.kernel === 'attention_decode');
    expect(decode).toHaveLength(1);
    expect(decode[0].shape).toEqual({ seq: 1, seq_k: 16384, heads: 28, kv_heads: 4, head_dim: 128 });
    expect(renderKernelsText(rep)).toMatch(/attention_decode causal +seq=1 seq_k=16384 .*0\.500 \(split-kv, 3000 GB\/s\)/);
  });

  test('a non-numeric gbs is a one-line error; a failed case keeps gbs null', () => {
    expect(() => parseKernelBench(doc([row('split-kv', 0.02, 3000).replace('"gbs":3000', '"gbs":"fast"')]), 's')).toThrow(/results\[0\].gbs is not a number/);
    const failed = row('split-kv', 0, null).replace('"ms":0', '"ms":null').replace('"tflops":0.5', '"tflops":null');
    expect(parseKernelBench(doc([failed]), 's').failed).toHaveLength(1);
  });
});

// vreflect_cuda_bench --attention-tiles: one result per tile variant of the same case (impl "vreflect-tc/<tile>",
// "tile" beside it); the merged row keeps the fastest variant and names it.
describe('bench kernels attention tile variants', () => {
  const row = (tile: string, tflops: number, causal: boolean) =>
    `{"kernel":"attention_fwd","shape":{"batch":1,"seq_q":8192,"seq_k":8192,"heads_q":28,"heads_kv":4,"head_dim":128},"dtype":"bf16","causal":${causal},"ms":1,"tflops":${tflops},"impl":"vreflect-tc/${tile}","reps":5,"tile":"${tile}"}`;
  const doc = (rows: string[]) => `{"device":{"name":"H100"},"date":"d","results":[${rows.join(',')}]}`;

  test('tile is parsed; the fastest variant per case wins its cell, causal and full stay apart', () => {
    const gpu = parseKernelBench(doc([row('64x64w4', 200, false), row('128x64w4s', 310, false), row('128x32w8', 250, false), row('64x64w4', 150, true)]), 'vreflect_cuda_bench');
    expect(gpu.results.map((r) => r.tile)).toEqual(['64x64w4', '128x64w4s', '128x32w8', '64x64w4']);
    const rep = mergeKernelRuns([{ side: 'gpu', bench: gpu }], 'DATE');
    const fwd = rep.rows.filter((r) => r.kernel === 'attention_fwd');
    expect(fwd).toHaveLength(2);
    expect(fwd.find((r) => r.causal === false)!.gpu).toEqual(expect.objectContaining({ tflops: 310, tile: '128x64w4s', impl: 'vreflect-tc/128x64w4s' }));
    expect(renderKernelsText(rep)).toMatch(/attention_fwd +seq=8192 .*310 \(vreflect-tc\/128x64w4s\)/);
  });

  test('the variant that ran is named also where impl does not carry it; the device line names the GPU\'s tiles', () => {
    const plain = row('64x64w4', 200, false).replace('"impl":"vreflect-tc/64x64w4"', '"impl":"vreflect-tc"');
    const wg = row('x', 300, true).replace('"impl":"vreflect-tc/x"', '"impl":"vreflect-wgmma"').replace('"tile":"x"', '"tile":"wgmma:128x64wg2"');
    const text = `{"device":{"name":"NVIDIA A10G","cc":"8.6","smem_optin_bytes":101376,"attention_tiles":{"fwd":"64x64w4","bwd":"64x32w4d"}},"date":"d","results":[${plain},${wg}]}`;
    const gpu = parseKernelBench(text, 'vreflect_cuda_bench');
    expect(gpu.device.attention_tiles).toEqual({ fwd: '64x64w4', bwd: '64x32w4d' });
    const out = renderKernelsText(mergeKernelRuns([{ side: 'gpu', bench: gpu }], 'DATE'));
    expect(out).toContain('NVIDIA A10G (cc 8.6) [attention tiles fwd 64x64w4, bwd 64x32w4d; 99 KiB shared memory per block]: 2 results');
    expect(out).toMatch(/attention_fwd +seq=8192 .*200 \(vreflect-tc\/64x64w4\)/);
    expect(out).toMatch(/attention_fwd causal +seq=8192 .*300 \(vreflect-wgmma\/128x64wg2\)/);
  });

  test('a non-string tile is a one-line error', () => {
    expect(() => parseKernelBench(doc([row('64x64w4', 1, false).replace('"tile":"64x64w4"', '"tile":64')]), 's')).toThrow(/results\[0\].tile is not a string/);
  });
});

// `bench kernels --elementwise`: the memory-bound kernels (vreflect_cuda_bench --kernels ..., torch_kernels.py
// --kernels ...) report tflops 0 and GB/s; a row keeps each side's highest GB/s and the ratio is GB/s over GB/s.
describe('bench kernels memory-bound rows', () => {
  const row = (impl: string, ms: number, gbs: number) =>
    `{"kernel":"swiglu_bwd","shape":{"rows":4096,"cols":18944},"dtype":"bf16","ms":${ms},"tflops":0,"impl":"${impl}","reps":10,"gbs":${gbs}}`;
  const doc = (rows: string[]) => `{"device":{"name":"H100"},"date":"d","results":[${rows.join(',')}]}`;

  test('the faster GB/s wins its cell, the ratio is by GB/s, the cell reads GB/s', () => {
    const gpu = parseKernelBench(doc([row('vreflect-scalar', 1.2, 1000), row('vreflect-vec16', 0.4, 2900)]), 'vreflect_cuda_bench');
    const torch = parseKernelBench(doc([row('torch-eager', 0.8, 1450)]), 'torch_kernels.py');
    const rep = mergeKernelRuns([{ side: 'gpu', bench: gpu }, { side: 'torch', bench: torch }], 'DATE');
    expect(rep.rows).toHaveLength(1);
    expect(rep.rows[0].gpu).toEqual(expect.objectContaining({ impl: 'vreflect-vec16', gbs: 2900 }));
    expect(rep.rows[0].ratio).toBeCloseTo(2, 6);
    expect(renderKernelsText(rep)).toMatch(/swiglu_bwd +rows=4096 cols=18944 +- +2900 GB\/s \(vreflect-vec16\) +1450 GB\/s \(torch-eager\) +2\.00/);
  });

  test('an unknown kernel name is still a one-line error naming the known ones', () => {
    expect(() => parseKernelBench(doc([row('x', 1, 1).replace('swiglu_bwd', 'softmax')]), 's')).toThrow(/kernel "softmax" is not one of attention_fwd, .*swiglu_bwd.*adamw/);
  });
});
