// `vreflect train-stage1 --device cuda` as users run it, without a GPU: the compiled CLI with the emulator addon
// (build/Release/vreflect_native_emu.node, loaded through VREFLECT_ADDON: the CUDA sources compiled as C++ against
// native/cuda_emu), so the run goes through the GPU trainer (native/cuda/model/gpu_trainer). On the tiny golden
// checkpoint and the data fixtures: 2 steps with checkpoints; the output loads in `infer --device cpu` (the regular
// addon); its losses are the CPU bf16 trainer's within bf16 noise; `--resume latest` (with --device auto, which
// must pick the GPU) reproduces the uninterrupted run's metrics and weights; `train-stage2 --device cuda` on that
// output (DAC distillation from the frozen BCM) agrees with the CPU bf16 trainer's stage 2; `--attention-maps` draws
// the same pictures as on the CPU in both stages; --gradient-checkpointing auto (which the plan resolves to off here)
// and on give the same losses; and what the GPU trainer lacks is refused in one line. When the build found no CUDA
// headers the tests say so and pass.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';

import { readSafetensorsHeader } from '../../src/model/safetensors';
import { planTraining } from '../../src/plan/gpu_memory';
import { largestMicroBatch } from '../../src/plan/train_batch_shape';
import { loadModelConfig } from '../../src/model/config';

import { expectOneLineError, ROOT, runCli } from './cli';

const MODEL = path.join(ROOT, 'test', 'golden', 'models', 'tiny-flat');
const META = path.join(ROOT, 'test', 'fixtures', 'data', 'meta.json');
const BUILD = path.join(ROOT, 'build');
const EMU_ADDON = path.join(BUILD, 'Release', 'vreflect_native_emu.node');
const SKIPPED = [path.join(BUILD, 'vreflect_cuda_emu_tests.skipped'), path.join(BUILD, 'Release', 'vreflect_cuda_emu_tests.skipped')].find((f) => fs.existsSync(f));
const COMMON = ['--data-path', META, '--image-min-pixels', '3136', '--image-max-pixels', '50176', '--learning-rate', '1e-3',
  '--max-steps', '2', '--gradient-accumulation-steps', '1', '--save-steps', '1', '--enable-data-packing', 'false'];  // one sample a step: ~1 s in the emulator

/** The CLI; `emu` loads the emulator addon (else the regular one, as users without a GPU have). */
function vreflect(args: string[], emu = true, level = 'warn') {
  return runCli(args, { env: { VREFLECT_FAKE_CUDA_PROBE: undefined, VREFLECT_ADDON: emu ? EMU_ADDON : undefined }, level });
}


/** --attention-maps at every step (the capture changes no loss: the other tests' figures hold with it on). */
const maps = (dir: string) => ['--attention-maps', dir, '--attention-maps-every', '1'];
const metrics = (dir: string) => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const strip = (m: Record<string, unknown>) => {
  const { elapsed_s: _e, grad_norm: _g, ...rest } = m;
  return rest;
};
/** The fp32 tensors of a safetensors file (the trainer state: master weights and moments). */
function f32Tensors(file: string): Map<string, Float32Array> {
  const h = readSafetensorsHeader(file);
  const buf = fs.readFileSync(file);
  const out = new Map<string, Float32Array>();
  for (const [name, t] of h.tensors) {
    if (t.dtype !== 'F32') continue;
    const b = buf.subarray(h.dataStart + t.begin, h.dataStart + t.end);
    out.set(name, new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
  }
  return out;
}

/**
 * --attention-maps pictures of a GPU run against the CPU run's: the same files, sizes, and pixels within 4 levels
 * (the maps differ by bf16 noise, ~1e-3 of a colour scale that spans 255 levels; a wrong map moves whole panels).
 */
async function expectSamePictures(gpuDir: string, cpuDir: string): Promise<void> {
  const files = fs.readdirSync(cpuDir).sort();
  expect(files.length).toBeGreaterThan(0);
  expect(fs.readdirSync(gpuDir).sort()).toEqual(files);
  for (const f of files) {
    const [a, b] = await Promise.all([gpuDir, cpuDir].map((d) => sharp(path.join(d, f)).raw().toBuffer({ resolveWithObject: true })));
    expect([f, a.info.width, a.info.height]).toEqual([f, b.info.width, b.info.height]);
    let worst = 0;
    for (let i = 0; i < a.data.length; i++) worst = Math.max(worst, Math.abs(a.data[i] - b.data[i]));
    expect([f, worst <= 4]).toEqual([f, true]);
  }
}

const suite = SKIPPED ? describe.skip : describe;
if (SKIPPED) console.warn(`train --device cuda emulator tests skipped: ${fs.readFileSync(SKIPPED, 'utf8').trim()}`);

suite('vreflect train-stage1 --device cuda (emulator addon)', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-train-cuda-'));
  const gpu = path.join(tmp, 'gpu');
  const gpuMaps = path.join(tmp, 'gpu-maps');
  let log = '';

  beforeAll(() => {
    if (!fs.existsSync(EMU_ADDON)) throw new Error(`${EMU_ADDON} not built: run npx cmake-js compile`);
    const r = vreflect(['train-stage1', '--model', MODEL, ...COMMON, '--output-dir', gpu, '--device', 'cuda', ...maps(gpuMaps)], true, 'info');
    if (r.code !== 0) throw new Error(`train-stage1 --device cuda failed: ${r.stderr}`);
    log = r.stderr;
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('2 steps on the GPU trainer (gpu optimizer placement from the plan), checkpoints and a final HF model', () => {
    expect(log).toMatch(/"optimizer_states":"gpu"/);
    const m = metrics(gpu);
    expect(m.map((x) => x.step)).toEqual([1, 2]);
    for (const x of m) for (const k of ['loss', 'loss_ce', 'loss_resampler', 'grad_norm', 'lr']) expect(Number.isFinite(x[k])).toBe(true);
    for (const d of ['checkpoint-1', 'checkpoint-2']) expect(fs.existsSync(path.join(gpu, d, 'trainer_state.json'))).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(gpu, 'config.json'), 'utf8')).use_box_feature_resampler).toBe(true);
  });

  // The plan resolves auto to no recomputation (the tiny model's activations fit) and logs it; a run with
  // --gradient-checkpointing on recomputes each decoder layer from its input, which gives the same bits: step 1's
  // losses equal exactly; step 2 starts from weights that differ only by the order in which atomics summed the RMSNorm
  // weight / bias gradients (as two runs of one mode do; see the resume test), so its losses within 1e-5 relative.
  test('--gradient-checkpointing auto chose off (logged); on gives the same losses', () => {
    expect(log).toMatch(/"gradient_checkpointing":"off","gradient_checkpointing_mode":"auto","decoder_activation_bytes":\d+.*"msg":"GPU training plan"/);
    const on = path.join(tmp, 'recompute');
    const r = vreflect(['train-stage1', '--model', MODEL, ...COMMON, '--output-dir', on, '--device', 'cuda', '--gradient-checkpointing', 'on', '--save-steps', '0'], true, 'info');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/"gradient_checkpointing":"on","gradient_checkpointing_mode":"on"/);
    const [a, b] = [metrics(on), metrics(gpu)];
    expect(a.map((x) => x.step)).toEqual([1, 2]);
    for (const k of ['loss', 'loss_ce', 'loss_resampler', 'tokens', 'boxes']) expect([k, a[0][k]]).toEqual([k, b[0][k]]);
    expect(Math.abs(a[0].grad_norm - b[0].grad_norm)).toBeLessThanOrEqual(1e-6 * b[0].grad_norm);
    for (const k of ['loss', 'loss_ce', 'loss_resampler', 'grad_norm']) expect([k, Math.abs(a[1][k] - b[1][k]) <= 1e-5 * Math.abs(b[1][k])]).toEqual([k, true]);
  });

  test('its losses and grad norms are the CPU bf16 trainer\'s within 2% (bf16 rounding; train_parity checks the rule)', () => {
    const cpu = path.join(tmp, 'cpu');
    const r = vreflect(['train-stage1', '--model', MODEL, ...COMMON, '--output-dir', cpu, '--device', 'cpu', '--save-steps', '0'], false);
    expect(r.code).toBe(0);
    const [a, b] = [metrics(gpu), metrics(cpu)];
    for (let i = 0; i < 2; i++)
      for (const k of ['loss', 'loss_ce', 'loss_resampler', 'grad_norm'])
        expect([i, k, Math.abs(a[i][k] - b[i][k]) <= 0.02 * Math.abs(b[i][k])]).toEqual([i, k, true]);
    // Not trivially equal: the GPU rounds differently from the CPU's bf16 mode.
    expect(a[0].loss).not.toBe(b[0].loss);
  });

  test('--attention-maps: the CPU run\'s pictures (step-1.png, step-2.png: the BCM teacher row)', async () => {
    const cpuMaps = path.join(tmp, 'cpu-maps');
    const r = vreflect(['train-stage1', '--model', MODEL, ...COMMON, '--output-dir', path.join(tmp, 'cpu-for-maps'), '--device', 'cpu', '--save-steps', '0', ...maps(cpuMaps)], false);
    expect(r.code).toBe(0);
    expect(fs.readdirSync(gpuMaps).sort()).toEqual(['step-1.png', 'step-2.png']);
    await expectSamePictures(gpuMaps, cpuMaps);
  });

  test('the output loads in infer --device cpu (the regular addon)', () => {
    const r = vreflect(['infer', '--model', gpu, '--image', path.join(ROOT, 'test', 'golden', 'images', 'odd_97x61.png'), '--prompt', 'What is it?', '--max-new-tokens', '4', '--device', 'cpu', '--json'], false);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).token_ids.length).toBeGreaterThan(0);
  });

  // The device sums some gradients with atomicAdd across blocks (RMSNorm weights, biases), whose order is not
  // fixed, so a resumed run equals the uninterrupted one up to fp32 summation order: losses exactly (the forward of
  // step 2 starts from the same fp32 state), the grad norm within 1e-9 relative, the fp32 master weights and
  // moments of checkpoint-2 within 1e-5 of each tensor's max-abs (a resume that lost the moments or the step moves
  // weights by ~lr = 1e-3).
  test('--resume latest from checkpoint-1 (--device auto picks the GPU) equals the uninterrupted run', () => {
    const b = path.join(tmp, 'resumed');
    fs.mkdirSync(b);
    fs.cpSync(path.join(gpu, 'checkpoint-1'), path.join(b, 'checkpoint-1'), { recursive: true });
    fs.writeFileSync(path.join(b, 'metrics.jsonl'), fs.readFileSync(path.join(gpu, 'metrics.jsonl'), 'utf8').split('\n')[0] + '\n');
    const r = vreflect(['train-stage1', '--model', MODEL, ...COMMON, '--output-dir', b, '--device', 'auto', '--resume', 'latest'], true, 'info');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/--device auto: running on CUDA/);
    const [mb, mg] = [metrics(b), metrics(gpu)];
    expect(mb.map(strip)).toEqual(mg.map(strip));
    for (let i = 0; i < mg.length; i++) expect(Math.abs(mb[i].grad_norm - mg[i].grad_norm)).toBeLessThanOrEqual(1e-9 * mg[i].grad_norm);
    const [sb, sg] = [f32Tensors(path.join(b, 'checkpoint-2', 'optimizer_state.safetensors')), f32Tensors(path.join(gpu, 'checkpoint-2', 'optimizer_state.safetensors'))];
    expect([...sb.keys()].sort()).toEqual([...sg.keys()].sort());
    expect(sg.size).toBeGreaterThan(0);
    for (const [name, want] of sg) {
      const got = sb.get(name)!;
      let maxRef = 0, maxErr = 0;
      for (let i = 0; i < want.length; i++) {
        maxRef = Math.max(maxRef, Math.abs(want[i]));
        maxErr = Math.max(maxErr, Math.abs(got[i] - want[i]));
      }
      expect([name, maxErr <= 1e-5 * maxRef]).toEqual([name, true]);
    }
  });

  test('train-stage2 --device cuda on the stage-1 output: 2 steps, losses (CE, MSE, KL) the CPU bf16 trainer\'s within 2%, the same --attention-maps pictures', async () => {
    const [s2g, s2c] = [path.join(tmp, 'stage2-gpu'), path.join(tmp, 'stage2-cpu')];
    const g = vreflect(['train-stage2', '--model', gpu, ...COMMON, '--output-dir', s2g, '--device', 'cuda', '--save-steps', '0', ...maps(path.join(s2g, 'maps'))]);
    expect([g.code, g.stderr]).toEqual([0, expect.any(String)]);
    const c = vreflect(['train-stage2', '--model', gpu, ...COMMON, '--output-dir', s2c, '--device', 'cpu', '--dtype', 'bf16', '--save-steps', '0', ...maps(path.join(s2c, 'maps'))], false);
    expect(c.code).toBe(0);
    const [a, b] = [metrics(s2g), metrics(s2c)];
    expect(a.map((x) => x.step)).toEqual([1, 2]);
    for (let i = 0; i < 2; i++)
      for (const k of ['loss', 'loss_ce', 'loss_resampler', 'loss_mse', 'loss_kl', 'grad_norm']) {
        expect([i, k, Number.isFinite(a[i][k])]).toEqual([i, k, true]);
        expect([i, k, Math.abs(a[i][k] - b[i][k]) <= 0.02 * Math.abs(b[i][k]) + 1e-6]).toEqual([i, k, true]);
      }
    expect(a[0].loss_kl).toBeGreaterThan(0);
    expect(a[0].loss).not.toBe(b[0].loss);
    // The BCM teacher is frozen: the stage-2 output carries the stage-1 BCM unchanged.
    const w = (dir: string) => readSafetensorsHeader(path.join(dir, 'model.safetensors'));
    expect([...w(s2g).tensors.keys()].some((n) => n.startsWith('box_feature_resampler.'))).toBe(true);
    // Teacher and student rows (test/e2e/train_attention.test.ts checks the layout).
    await expectSamePictures(path.join(s2g, 'maps'), path.join(s2c, 'maps'));
  });

  test('--device auto with --dtype fp32 runs on the CPU (the GPU trainer is bf16) and says why', () => {
    const r = vreflect(['train-stage1', '--model', MODEL, ...COMMON, '--max-steps', '1', '--save-steps', '0', '--output-dir', path.join(tmp, 'auto-fp32'), '--device', 'auto', '--dtype', 'fp32'], true, 'info');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/"cuda":"--dtype fp32 runs on the CPU only[^"]*".*"msg":"--device auto: running on the CPU"/);
  });

  describe('one-line errors', () => {
    const out = () => fs.mkdtempSync(path.join(tmp, 'err-'));
    test.each([
      ['train-stage1', ['--device', 'cuda', '--dtype', 'fp32'], /^vreflect: error: --device cuda: --dtype fp32 runs on the CPU only: the GPU trainer computes in bf16/],
    ])('%s %s', (cmd, extra, msg) => {
      expectOneLineError(vreflect([cmd as string, '--model', MODEL, ...COMMON, '--output-dir', out(), ...(extra as string[])]), msg as RegExp);
    });
    // A GPU with room for the plan with recomputation but not for every layer's activations (the emulated device's
    // size between the two plans' totals): off is refused naming auto / on.
    test('--gradient-checkpointing off on a GPU that only fits recomputation', () => {
      const cfg = loadModelConfig(MODEL);
      const mb = largestMicroBatch({ packing: false, perDeviceBatchSize: 1, imageMaxPixels: 50176 });
      const plan = (checkpointing: 'on' | 'off') => planTraining({ shape: { name: 'tiny-flat', text: cfg.text, vision: cfg.vision }, stage: 1, ...mb,
        optimizerStates: 'gpu', checkpointing, gpuCapacity: 1e15, hostCapacity: 1e15 }).gpuBytes;
      const [on, off] = [plan('on'), plan('off')];
      expect(off).toBeGreaterThan(on);
      const r = runCli(['train-stage1', '--model', MODEL, ...COMMON, '--output-dir', out(), '--device', 'cuda', '--optimizer-states', 'gpu', '--gradient-checkpointing', 'off'],
        { env: { VREFLECT_FAKE_CUDA_PROBE: undefined, VREFLECT_ADDON: EMU_ADDON, VREFLECT_CUDA_EMU_MEMORY: String(Math.floor((on + off) / 2)) } });
      expectOneLineError(r, /^vreflect: error: --device cuda: train-stage1 with --optimizer-states gpu needs .*: every decoder layer's activations \(--gradient-checkpointing off\) do not fit; with recomputation it needs .* \(fits\): pass --gradient-checkpointing auto or on$/);
    });
    test('--optimizer-states gpu-8bit is no choice (considered, not built: docs/architecture.md)', () => {
      const r = vreflect(['train-stage1', '--model', MODEL, ...COMMON, '--output-dir', out(), '--device', 'cuda', '--optimizer-states', 'gpu-8bit']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/Argument: optimizer-states, Given: "gpu-8bit", Choices: "auto", "host", "gpu"/);
    });
  });
});
