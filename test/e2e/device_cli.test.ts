// `--device cuda`, `vreflect doctor`, `vreflect plan` and `vreflect bench kernels` as users run them, on a
// machine without a GPU: the real probe (no driver -> one-line error), and recorded probes of GPU machines
// (VREFLECT_FAKE_CUDA_PROBE, test/fixtures/cuda) for the branches after the driver check.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { expectOneLineError, ROOT, runCli } from './cli';

const MODEL = path.join(ROOT, 'test', 'golden', 'models', 'tiny-flat');
const IMAGE = path.join(ROOT, 'test', 'golden', 'images', 'odd_97x61.png');
const META = path.join(ROOT, 'test', 'fixtures', 'data', 'meta.json');
const FIX = path.join(ROOT, 'test', 'fixtures', 'cuda');

function vreflect(args: string[], fake?: string) {
  return runCli(args, { env: { VREFLECT_FAKE_CUDA_PROBE: fake ? path.join(FIX, fake) : undefined } });
}


// This machine's own answer, to know which real-probe branch to expect.
const real = JSON.parse(vreflect(['doctor', '--json']).stdout).backends.cuda;
const noDriver = !real.driver.found;

const INFER = ['infer', '--model', MODEL, '--image', IMAGE, '--prompt', 'What is this?', '--device', 'cuda'];
// A recorded GPU probe passes every pre-flight check; the addon itself then finds this machine's real state.
const ADDON_NO_GPU = /^vreflect: error: --device cuda: (no NVIDIA driver \(libcuda\.so\.1 not found\)|driver found but no GPU|this build has no CUDA backend)/;

describe('--device cuda', () => {
  (noDriver ? test : test.skip)('without a driver: one line naming it (infer, eval, train, bench)', () => {
    const data = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-dev-'));
    for (const args of [
      INFER,
      ['eval', '--model', MODEL, '--data-root', data, '--output-dir', path.join(data, 'out'), '--device', 'cuda'],
      ['train-stage1', '--model', MODEL, '--data-path', META, '--output-dir', path.join(data, 't'), '--device', 'cuda'],
      ['bench', 'train', '--device', 'cuda', '--torch', 'off', '--probes', 'false'],
    ])
      expectOneLineError(vreflect(args), /^vreflect: error: --device cuda: no NVIDIA driver \(libcuda\.so\.1 not found\)$/);
  });

  test('GPU present but no CUDA backend built', () => {
    expectOneLineError(vreflect(INFER, 'h100_not_built.json'), /--device cuda: GPU present \(NVIDIA H100 80GB HBM3 \(sm_90\)\) but this build has no CUDA backend/);
  });

  test('a GPU arch the build does not cover', () => {
    expectOneLineError(vreflect(INFER, 'v100_built.json'), /--device cuda: Tesla V100-SXM2-32GB \(sm_70\): this build has no kernel image for it/);
  });

  test('a driver older than the linked runtime', () => {
    expectOneLineError(vreflect(INFER, 'old_driver_built.json'), /--device cuda: the NVIDIA driver \(CUDA 12\.8\) is older than the CUDA runtime/);
  });

  test('all checks pass: infer / eval / bench infer go to the CUDA session, which finds no GPU here; so do both training stages', () => {
    expectOneLineError(vreflect(INFER, 'h100_built.json'), ADDON_NO_GPU);
    const data = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-dev-'));
    const evalData = path.join(ROOT, 'test', 'fixtures', 'eval', 'data');
    expectOneLineError(vreflect(['eval', '--model', MODEL, '--data-root', evalData, '--benchmarks', 'VSTAR', '--limit', '1', '--output-dir', path.join(data, 'o'), '--device', 'cuda'], 'h100_built.json'), ADDON_NO_GPU);
    // train-stage2 passes the pre-flight too: the next check is the model's (tiny-flat has no stage-1 BCM).
    expectOneLineError(vreflect(['train-stage2', '--model', MODEL, '--data-path', META, '--output-dir', path.join(data, 't'), '--device', 'cuda'], 'h100_built.json'), /^vreflect: error: stage 2 needs a stage-1 checkpoint: /);
    // train-stage1 passes the pre-flight and reaches the addon's trainer, which finds this machine's real state.
    expectOneLineError(vreflect(['train-stage1', '--model', MODEL, '--data-path', META, '--output-dir', path.join(data, 't1'), '--device', 'cuda'], 'h100_built.json'), ADDON_NO_GPU);
    // bench infer asks the addon before it writes its (large) checkpoint.
    expectOneLineError(vreflect(['bench', 'infer', '--device', 'cuda', '--torch', 'off'], 'h100_built.json'), ADDON_NO_GPU);
  });

  test('the memory plan refuses 7B training on a 24 GB GPU, naming --optimizer-states', () => {
    const data = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-dev-'));
    expectOneLineError(
      vreflect(['train-stage1', '--model', '7b', '--data-path', META, '--output-dir', path.join(data, 't'), '--device', 'cuda', '--optimizer-states', 'gpu'], 'a10g_built.json'),
      /--device cuda: train-stage1 with --optimizer-states gpu needs .* GPU memory .*: weights, gradients and optimizer states alone exceed the GPU: --optimizer-states host needs/,
    );
  });

  test('--device cpu and auto are unchanged (no CUDA check)', () => {
    const r = vreflect(['infer', '--model', MODEL, '--prompt', 'hi', '--max-new-tokens', '1', '--device', 'cpu', '--json'], 'v100_built.json');
    expect(r.code).toBe(0);
  });
});

describe('vreflect doctor', () => {
  test('--json keeps the existing fields and adds the CUDA facts', () => {
    const r = vreflect(['doctor', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.backends.cpu.built).toBe(true);
    expect(typeof j.cpu.threads).toBe('number');
    const c = j.backends.cuda;
    expect(typeof c.built).toBe('boolean');
    expect(Array.isArray(c.devices)).toBe(true);
    expect(c.cublaslt).toHaveProperty('found');
    if (c.built) expect(c.runtime).toMatch(/static \(linked at build time\)/);
    if (noDriver) expect(c.error).toBe('no NVIDIA driver (libcuda.so.1 not found)');
  });

  test('text, on a recorded H100', () => {
    const r = vreflect(['doctor'], 'h100_built.json');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/gpu 0: NVIDIA H100 80GB HBM3, compute 9\.0, 79\.65 GiB, 79\.10 GiB free; sm_90 SASS/);
    expect(r.stdout).toMatch(/ready for --device cuda/);
  });
});

describe('vreflect plan', () => {
  test('7B + HR-Bench 8K inference fits an 80 GB GPU', () => {
    const r = vreflect(['plan', '--model', '7b', '--gpu-memory', '80GB', '--host-memory', '64GB', '--json']);
    expect(r.code).toBe(0);
    const p = JSON.parse(r.stdout);
    expect(p.fits).toBe(true);
    expect(p.kind).toBe('infer');
    expect(p.notes[0]).toMatch(/image 7680x4320 resized to/);
  });

  test('stage 1 on a host with too little RAM: exit 1 and the reason', () => {
    const r = vreflect(['plan', '--model', '7b', '--stage', '1', '--gpu-memory', '80GB', '--host-memory', '64GB']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/does not fit: .*host cannot hold the fp32 master weights/);
  });

  test('stage 1 --gradient-checkpointing: auto keeps every layer where it fits (one 5,632-token sample), off names auto / on where not (4 x 4096 packs)', () => {
    const small = vreflect(['plan', '--model', '7b', '--stage', '1', '--enable-data-packing', 'false', '--gpu-memory', '80GB', '--host-memory', '256GB', '--json']);
    expect(small.code).toBe(0);
    expect(JSON.parse(small.stdout)).toMatchObject({ fits: true, checkpointing: false, optimizerStates: 'host' });
    const packed = vreflect(['plan', '--model', '7b', '--stage', '1', '--gradient-checkpointing', 'off', '--gpu-memory', '80GB', '--host-memory', '256GB']);
    expect(packed.code).toBe(1);
    expect(packed.stdout).toMatch(/every decoder layer's activations \(--gradient-checkpointing off\) do not fit; with recomputation it needs .* \(fits\): pass --gradient-checkpointing auto or on/);
  });

  test('bad sizes and models are one-line errors', () => {
    expectOneLineError(vreflect(['plan', '--gpu-memory', 'lots']), /--gpu-memory: "lots" is not a size/);
    expectOneLineError(vreflect(['plan', '--model', '/nonexistent']), /--model: \/nonexistent is neither a checkpoint directory nor a preset/);
    expectOneLineError(vreflect(['plan', '--image-size', '100']), /--image-size: "100" is not WxH/);
  });

  test('reads a checkpoint directory', () => {
    const r = vreflect(['plan', '--model', MODEL, '--image-size', '97x61', '--json', '--gpu-memory', '80GB']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).model).toBe('tiny-flat');
  });
});

describe('vreflect bench kernels', () => {
  test('CPU side only, quick: JSON rows with TFLOP/s', () => {
    const r = vreflect(['bench', 'kernels', '--quick', '--sides', 'cpu', '--cpu-max-seq', '512', '--json']);
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout);
    const kinds = new Set(rep.rows.map((x: any) => x.kernel));
    for (const k of ['attention_fwd', 'attention_bwd', 'cross_attention_fwd', 'cross_attention_bwd', 'gemm']) expect(kinds.has(k)).toBe(true);
    for (const row of rep.rows) expect(row.cpu.tflops).toBeGreaterThan(0);
  }, 120000);

  test('GPU and PyTorch sides say why they were skipped', () => {
    const r = vreflect(['bench', 'kernels', '--quick', '--sides', 'gpu,torch', '--json']);
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout);
    for (const s of rep.sides) if (!s.device) expect(s.skipped).toEqual(expect.any(String));
  });

  test('unknown side', () => {
    expectOneLineError(vreflect(['bench', 'kernels', '--sides', 'tpu']), /--sides: unknown side "tpu"/);
  });
});
