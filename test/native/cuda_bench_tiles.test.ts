// vreflect_cuda_bench --attention-tiles on its --dry-run path (no GPU needed): the planned cases per tile variant
// of the tensor-core attention, their JSON as the kernels report parses it, one-line errors for bad names, and
// native/cuda/bench/tile_summary.py (what gpu_session.sh prints) on those cases with made-up timings. The bench is
// built only where nvcc is found: without it this test says so and passes.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { addonPath } from '../../src/native/addon';
import { parseKernelBench } from '../../src/bench/kernels_schema';

const FWD = ['64x64w4', '64x64w4s', '64x32w4', '64x128w4s', '128x32w4', '128x64w4s', '128x32w8', '128x64w8s', '256x32w8s'];
const BWD = ['64x64w4', '64x32w4', '128x32w8', '64x64w4d', '64x32w4d', '128x32w8d', '128x64w8d'];
// the Hopper wgmma kernels' variants (attention_wgmma.cu, attention_wgmma_backward.cu), part of 'all'
const WGMMA = ['wgmma:128x64wg2', 'wgmma:128x128wg2', 'wgmma:64x128wg1', 'wgmma:128x64wg2o', 'wgmma:128x128wg2o', 'wgmma:64x128wg1o', 'wgmma:128x64wg2p', 'wgmma:128x128wg2p'];
const WGMMA_BWD = ['wgmma:128x64wg2', 'wgmma:64x64wg1'];

function bench(): string | undefined {
  const addonDir = path.dirname(addonPath());
  for (const dir of [addonDir, path.dirname(addonDir)]) {
    const bin = path.join(dir, 'vreflect_cuda_bench');
    if (fs.existsSync(bin)) return bin;
  }
  return undefined;
}

const run = (bin: string, args: string[]) => spawnSync(bin, args, { encoding: 'utf8', timeout: 30_000 });

describe('vreflect_cuda_bench --attention-tiles (dry run)', () => {
  const bin = bench();
  const maybe = bin ? test : test.skip;
  if (!bin) console.warn('vreflect_cuda_bench not built (no nvcc): --attention-tiles tests skipped');

  maybe('all: one case per variant and mask at each length, forward and backward variants apart', () => {
    const res = run(bin!, ['--dry-run', '--json', '--kernels', 'attention_fwd,attention_bwd', '--seqs', '8k', '--attention-tiles', 'all']);
    expect(res.status).toBe(0);
    const doc = JSON.parse(res.stdout);
    const tiles = (kernel: string, causal: boolean) => doc.results.filter((r: any) => r.kernel === kernel && r.causal === causal).map((r: any) => r.tile);
    for (const causal of [false, true]) {
      expect(tiles('attention_fwd', causal)).toEqual([...FWD, ...WGMMA]);
      expect(tiles('attention_bwd', causal)).toEqual([...BWD, ...WGMMA_BWD]);
    }
    // a dry run has no device and times nothing: every case is "failed" for the report, none is malformed
    const parsed = parseKernelBench(JSON.stringify({ ...doc, device: { name: 'dry run' } }), 'vreflect_cuda_bench');
    expect(parsed.failed).toHaveLength(2 * (FWD.length + WGMMA.length + BWD.length + WGMMA_BWD.length));
  });

  maybe('a list keeps each kernel to its own variants; other kernels and no list have no tile', () => {
    const res = run(bin!, ['--dry-run', '--json', '--kernels', 'attention_fwd,attention_bwd,attention_decode', '--seqs', '1k', '--decode-keys', '1k', '--attention-tiles', '256x32w8s,128x32w8']);
    expect(res.status).toBe(0);
    const rows = JSON.parse(res.stdout).results.map((r: any) => `${r.kernel}:${r.tile ?? '-'}`);
    expect(rows).toEqual([
      'attention_fwd:256x32w8s', 'attention_fwd:128x32w8', 'attention_fwd:256x32w8s', 'attention_fwd:128x32w8',
      'attention_bwd:128x32w8', 'attention_bwd:128x32w8', 'attention_decode:-', 'attention_decode:-',
    ]);
    const wg = run(bin!, ['--dry-run', '--json', '--kernels', 'attention_fwd,attention_bwd', '--seqs', '1k', '--attention-tiles', 'wgmma:128x128wg2']);
    expect(JSON.parse(wg.stdout).results.map((r: any) => `${r.kernel}:${r.tile ?? '-'}`)).toEqual([
      'attention_fwd:wgmma:128x128wg2', 'attention_fwd:wgmma:128x128wg2', 'attention_bwd:-', 'attention_bwd:-',
    ]);
    const wgb = run(bin!, ['--dry-run', '--json', '--kernels', 'attention_fwd,attention_bwd', '--seqs', '1k', '--attention-tiles', 'wgmma:64x64wg1']);
    expect(JSON.parse(wgb.stdout).results.map((r: any) => `${r.kernel}:${r.tile ?? '-'}`)).toEqual([
      'attention_fwd:-', 'attention_fwd:-', 'attention_bwd:wgmma:64x64wg1', 'attention_bwd:wgmma:64x64wg1',
    ]);
    const plain = run(bin!, ['--dry-run', '--json', '--kernels', 'attention_fwd', '--seqs', '1k']);
    expect(JSON.parse(plain.stdout).results.every((r: any) => r.tile === undefined)).toBe(true);
  });

  maybe('an unknown variant is a one-line error naming the allowed ones', () => {
    const res = run(bin!, ['--dry-run', '--attention-tiles', '64x64']);
    expect(res.status).toBe(2);
    expect(res.stderr.trim()).toBe(`vreflect_cuda_bench: --attention-tiles '64x64' is not one of ${[...FWD, ...BWD.filter((b) => !FWD.includes(b)), ...WGMMA, 'wgmma:64x64wg1'].join(', ')}`);
  });

  const python = spawnSync('python3', ['--version']).status === 0;
  (bin && python ? test : test.skip)('tile_summary.py names the fastest variant per case and the env line', () => {
    const res = run(bin!, ['--dry-run', '--json', '--kernels', 'attention_fwd,attention_bwd', '--seqs', '8k', '--attention-tiles', 'all']);
    const doc = JSON.parse(res.stdout);
    // made-up timings: 128x64w4s wins the non-causal forward, 64x128w4s the causal one, 64x32w4 the backward
    for (const r of doc.results) {
      const win = r.kernel === 'attention_fwd' ? (r.causal ? '64x128w4s' : '128x64w4s') : '64x32w4';
      r.tflops = r.tile === win ? 300 : r.tile === 'wgmma:128x64wg2p' ? 150 : 100 + FWD.indexOf(r.tile);
      r.ms = 1;
    }
    doc.results[doc.results.length - 1] = { ...doc.results[doc.results.length - 1], ms: null, tflops: null, error: 'out of memory' };
    // as a run on a 99 KiB GPU reports it (a dry run has no device)
    doc.device = { name: 'NVIDIA A10G', cc: '8.6', smem_optin_bytes: 101376, attention_tiles: { fwd: '64x64w4', bwd: '64x32w4d' } };
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tiles-')), 'bench_tiles.json');
    fs.writeFileSync(file, JSON.stringify(doc));
    const out = spawnSync('python3', [path.join(__dirname, '../../native/cuda/bench/tile_summary.py'), file], { encoding: 'utf8' });
    expect(out.status).toBe(0);
    expect(out.stdout).toMatch(/attention_fwd seq=8192 full: best 128x64w4s 300\.0 TFLOP\/s \(below the 350 target\)/);
    expect(out.stdout).toMatch(/attention_fwd seq=8192 causal: best 64x128w4s 300\.0/);
    expect(out.stdout).toMatch(/attention_bwd seq=8192 causal: best 64x32w4 300\.0 TFLOP\/s \(meets the 250 target\)\n.*wgmma:64x64wg1 failed: out of memory/);
    expect(out.stdout).toMatch(/wgmma best wgmma:128x64wg2p 150\.0 vs mma\.sync best 128x64w4s 300\.0 TFLOP\/s \(0\.50x\)/);
    expect(out.stdout).toMatch(/wgmma best wgmma:128x64wg2 99\.0 vs mma\.sync best 64x32w4 300\.0 TFLOP\/s \(0\.33x\)/);
    // the ping-pong variants against their plain and overlap shapes (150 / 99; 128x128wg2p: all 99)
    expect(out.stdout).toMatch(/ping-pong vs plain \/ overlap: 128x128wg2p 1\.00x \/ 1\.00x \| 128x64wg2p 1\.52x \/ 1\.52x/);
    expect(out.stdout).toMatch(/most wins: VREFLECT_ATTENTION_TILE_BWD=64x32w4 VREFLECT_ATTENTION_TILE_FWD=(128x64w4s|64x128w4s) VREFLECT_ATTENTION_TILE_WGMMA_BWD=128x64wg2 VREFLECT_ATTENTION_TILE_WGMMA=128x64wg2p$/m);
    expect(out.stdout).toContain('this GPU runs (auto or the environment): fwd 64x64w4 bwd 64x32w4d (99 KiB shared memory per block); a new default goes first in kFwdPreference / kBwdPreference');
  });
});
