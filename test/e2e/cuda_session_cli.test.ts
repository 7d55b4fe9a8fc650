// `--device cuda` end to end without a GPU: the compiled CLI with the emulator addon (build/Release/
// vreflect_native_emu.node: the CUDA backend's .cu and model sources compiled as C++ against native/cuda_emu,
// loaded through VREFLECT_ADDON). It runs the real CUDA session (native/cuda/model/gpu_session) - ViT, prefill,
// device decode loop, greedy_next_token - on the golden tiny checkpoints and checks its token ids against
// transformers' golden outputs and against `--device cpu`, eval scores against the CPU's, and the one-line errors.
// When the build found no CUDA headers (the emulator tests' `.skipped` marker), the tests say so and pass.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { llmPrefillBytesPerToken, planInference } from '../../src/plan/gpu_memory';
import { planModel } from '../../src/plan/model_source';
import { expectOneLineError, ROOT, runCli } from './cli';

const GOLDEN = path.join(ROOT, 'test', 'golden');
const BUILD = path.join(ROOT, 'build');
const EMU_ADDON = path.join(BUILD, 'Release', 'vreflect_native_emu.node');
const SKIPPED = [path.join(BUILD, 'vreflect_cuda_emu_tests.skipped'), path.join(BUILD, 'Release', 'vreflect_cuda_emu_tests.skipped')].find((f) => fs.existsSync(f));

function vreflect(args: string[], env: NodeJS.ProcessEnv = {}, level = 'warn') {
  return runCli(args, { env: { VREFLECT_ADDON: EMU_ADDON, ...env, VREFLECT_FAKE_CUDA_PROBE: undefined }, level });
}


interface GoldenCase {
  model_dir: string;
  /** one image: `image`; several (prompt order): `images` */
  image?: string;
  images?: string[];
  prompt: string;
  assistant_prefix: string;
  latent_steps: number;
  max_new_tokens: number;
  repetition_penalty: number;
  generated_ids: number[];
  input_ids: number[];
  min_top2_margin: number;
}
const goldenCase = (name: string): GoldenCase => JSON.parse(fs.readFileSync(path.join(GOLDEN, 'cases', `${name}.json`), 'utf8'));

function inferArgs(c: GoldenCase, device: string): string[] {
  return [
    'infer', '--model', path.join(GOLDEN, c.model_dir), ...(c.images ?? [c.image!]).flatMap((f) => ['--image', path.join(GOLDEN, f)]),
    '--prompt', c.prompt, '--assistant-prefix', c.assistant_prefix, '--latent-steps', String(c.latent_steps), '--max-new-tokens', String(c.max_new_tokens),
    '--repetition-penalty', String(c.repetition_penalty), '--device', device, '--json',
  ];
}

function inferJson(c: GoldenCase, device: string, level = 'warn') {
  const r = vreflect(inferArgs(c, device), {}, level);
  expect(r.stderr).not.toMatch(/"level":(50|60)|vreflect: error/);
  expect(r.code).toBe(0);
  return { out: JSON.parse(r.stdout.trim().split('\n').pop()!), stderr: r.stderr };
}

const suite = SKIPPED ? describe.skip : describe;
if (SKIPPED) console.warn(`--device cuda emulator tests skipped: ${fs.readFileSync(SKIPPED, 'utf8').trim()}`);

suite('--device cuda through the CUDA emulator addon', () => {
  beforeAll(() => {
    if (!fs.existsSync(EMU_ADDON)) throw new Error(`${EMU_ADDON} not built: run npx cmake-js compile (the CUDA headers were found, so it should exist)`);
  });

  // Golden cases whose ids are robust to bf16 (smallest top-2 margin 0.32 / 0.35, the GPU's logit error ~0.1 on
  // tiny-flat: native/cuda/model/README.md), plus one on the other checkpoint layout (tiny-nested: 5.x nested
  // config, 3 shards, tied embeddings, 3 ViT blocks) with latent decoding whose ids depend on the repetition
  // penalty (with 1.0 they differ); they equal transformers' under the emulator although its margin is small (0.040).
  // And both prompts with several images (margins 0.069 / 0.116): a vision-tower sequence per image, positions
  // continuing after each.
  test.each([
    ['flat_plain_odd_rep105', 'plain decoding, repetition penalty 1.05, stops at <|im_end|>'],
    ['flat_latent8_small_rep105', 'latent decoding forced by --assistant-prefix "<|lvr_start|>", 8 steps'],
    ['nested_latent8_odd_rep105', 'tiny-nested, latent decoding (8 steps), penalty-dependent ids'],
    ['nested_latent8_3img_rep100', 'tiny-nested, three images (one vision-tower sequence each), latent decoding'],
    ['flat_plain_2img_rep105', 'two images, the wide one over several ViT windows, plain decoding'],
  ])('infer %s (%s): transformers\' token ids, and the same JSON as --device cpu', (name) => {
    const c = goldenCase(name);
    const gpu = inferJson(c, 'cuda').out;
    const cpu = inferJson(c, 'cpu').out;
    expect(gpu.token_ids).toEqual(c.generated_ids);
    expect(gpu.token_ids).toEqual(cpu.token_ids);
    expect(gpu.text).toBe(cpu.text);
    expect(Object.keys(gpu).sort()).toEqual(Object.keys(cpu).sort());
    expect(Object.keys(gpu.timings).sort()).toEqual(Object.keys(cpu.timings).sort());
    expect(gpu.prompt_tokens).toBe(c.input_ids.length);
    expect(gpu.latent_steps).toBe(cpu.latent_steps);
    if (c.assistant_prefix === '<|lvr_start|>') expect(gpu.latent_steps).toBe(c.latent_steps);
    for (const k of ['load_ms', 'preprocess_ms', 'vision_ms', 'prefill_ms', 'decode_ms_per_token']) expect(gpu.timings[k]).toBeGreaterThan(0);
  });

  test('--prefill-chunk 7: the prompt in chunks of 7 tokens gives transformers\' ids on cuda and cpu', () => {
    const c = goldenCase('flat_latent8_small_rep105');
    for (const device of ['cuda', 'cpu']) {
      const r = vreflect([...inferArgs(c, device), '--prefill-chunk', '7'], {}, 'info');
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout.trim().split('\n').pop()!).token_ids).toEqual(c.generated_ids);
      expect(r.stderr).toMatch(new RegExp(`"prompt_tokens":${c.input_ids.length},"prefill_chunk":7,"msg":"chunked prefill"`));
    }
    expectOneLineError(vreflect([...inferArgs(c, 'cuda'), '--prefill-chunk', '-1']), /--prefill-chunk must be an integer >= 0, got -1/);
  });

  test('the memory plan\'s activation items are the bytes the CUDA session allocates (tiny-flat, whole and chunked)', () => {
    const c = goldenCase('flat_latent8_small_rep105');
    const script = `
      const { Engine } = require(${JSON.stringify(path.join(ROOT, 'dist', 'src', 'infer', 'engine.js'))});
      (async () => {
        const out = [];
        for (const prefillChunk of [0, 7]) {
          const e = await Engine.load(${JSON.stringify(path.join(GOLDEN, c.model_dir))}, { device: 'cuda', prefillChunk });
          const r = await e.run({ image: ${JSON.stringify(path.join(GOLDEN, c.image!))}, prompt: ${JSON.stringify(c.prompt)},
            assistantPrefix: '<|lvr_start|>', latentSteps: 8, maxNewTokens: 1 });
          out.push({ bytes: r.prefill.deviceBytes, chunk: r.prefill.prefillChunk, tokens: r.prompt_tokens, grid: r.image.grid });
        }
        console.log(JSON.stringify(out));
      })();`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000, env: { ...process.env, VREFLECT_ADDON: EMU_ADDON } });
    expect(r.stderr).toBe('');
    const shape = planModel(path.join(GOLDEN, c.model_dir)).shape;
    for (const run of JSON.parse(r.stdout)) {
      const imageTokens = (run.grid[0] * run.grid[1] * run.grid[2]) / 4;
      const plan = planInference({ shape, imageTokens, promptTokens: run.tokens - imageTokens, maxNewTokens: 1, latentSteps: 8, gpuCapacity: 2 ** 40, hostCapacity: 2 ** 40 });
      const item = (prefix: string) => plan.items.find((i) => i.what.startsWith(prefix))!.bytes;
      // Each device buffer is rounded up to 256 B (DeviceArena), and the ViT's window tables are not in the plan:
      // the session's bytes may exceed the plan's by at most that, never fall short of it.
      const within = (got: number, planned: number, buffers: number, extra = 0) => {
        expect(got).toBeGreaterThanOrEqual(planned);
        expect(got).toBeLessThanOrEqual(planned + 256 * buffers + extra);
      };
      within(run.bytes.vit, item('ViT activations'), 16, 64 * 4);
      within(run.bytes.features, item('vision features'), 2, 4);
      within(run.bytes.prompt, item('prompt ids + input embeddings'), 2);
      within(run.bytes.llm, run.chunk * llmPrefillBytesPerToken(shape.text), 10, 32);
    }
    expect(JSON.parse(r.stdout).map((x: { chunk: number }) => x.chunk)).toEqual([c.input_ids.length, 7]);
  });

  test('--device auto picks the (emulated) GPU and says so in the log', () => {
    const c = goldenCase('flat_plain_odd_rep105');
    const r = vreflect([...inferArgs({ ...c, max_new_tokens: 1 }, 'auto')], {}, 'info');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!).token_ids).toEqual(c.generated_ids.slice(0, 1));
    const stderr = r.stderr;
    expect(stderr).toMatch(/"device":"cuda","msg":"--device auto: running on CUDA"/);
    expect(stderr).toMatch(/"device":"CUDA emulator \(CPU\)".*"msg":"model loaded"/);
  });

  test('eval: the same predictions and scores as --device cpu', () => {
    const data = path.join(ROOT, 'test', 'fixtures', 'eval', 'data');
    const model = path.join(GOLDEN, 'models', 'tiny-flat');
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-cuda-eval-'));
    const run = (device: string) => {
      const out = path.join(root, device);
      const r = vreflect(['eval', '--model', model, '--data-root', data, '--benchmarks', 'BLINK,VSTAR', '--limit', '1', '--steps', '0',
        '--max-new-tokens', '6', '--processor-max-pixels', '25088', '--output-dir', out, '--device', device]);
      expect(r.stderr).not.toMatch(/"level":(50|60)/);
      expect(r.code).toBe(0);
      return out;
    };
    const gpu = run('cuda');
    const cpu = run('cpu');
    let items = 0;
    for (const dir of ['blink', 'vstar_bench']) {
      const file = (root: string) => JSON.parse(fs.readFileSync(path.join(root, dir, 'decoding_by_steps', 'tiny-flat', 'step0.json'), 'utf8'));
      const [g, c] = [file(gpu), file(cpu)];
      expect(g[0].complete).toBe(true);
      expect(g.slice(1).map((x: any) => x.prediction)).toEqual(c.slice(1).map((x: any) => x.prediction));
      items += g.length - 1;
    }
    expect(items).toBe(2);
    const summary = (root: string) => {
      const s = JSON.parse(fs.readFileSync(path.join(root, 'summary.json'), 'utf8'));
      return Object.fromEntries(Object.entries(s).map(([b, runs]: [string, any]) => [b, runs.step0.accuracy_upstream]));
    };
    expect(summary(gpu)).toEqual(summary(cpu));
  });

  test('--attention-map: the latent steps\' attention over the image, within the bf16 rule of the CPU\'s', () => {
    // One process, three engines on the same latent run: CPU fp32 (reference), CPU bf16 (baseline), CUDA.
    const c = goldenCase('flat_latent8_small_rep105');
    const script = `
      const { Engine } = require(${JSON.stringify(path.join(ROOT, 'dist', 'src', 'infer', 'engine.js'))});
      const run = async (device, dtype) => {
        const e = await Engine.load(${JSON.stringify(path.join(GOLDEN, c.model_dir))}, { device, dtype });
        const r = await e.run({ image: ${JSON.stringify(path.join(GOLDEN, c.image!))}, prompt: ${JSON.stringify(c.prompt)},
          assistantPrefix: '<|lvr_start|>', latentSteps: 8, maxNewTokens: 2, captureAttention: true });
        return r.attention.map((a) => Array.from(a));
      };
      (async () => console.log(JSON.stringify({ f32: await run('cpu', 'fp32'), b16: await run('cpu', 'bf16'), gpu: await run('cuda') })))();`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000, env: { ...process.env, VREFLECT_ADDON: EMU_ADDON } });
    expect(r.stderr).toBe('');
    const { f32, b16, gpu } = JSON.parse(r.stdout) as Record<string, number[][]>;
    expect(gpu.length).toBe(8); // one map per latent step
    expect(gpu.map((m) => m.length)).toEqual(f32.map((m) => m.length));
    const err = (x: number[][]) => Math.max(...x.flatMap((m, i) => m.map((v, j) => Math.abs(v - f32[i][j]))));
    // flash-attention's rule, as for every kernel: at most 2x the same-precision baseline's error (+ a floor)
    expect(err(gpu)).toBeLessThanOrEqual(2 * err(b16) + 1e-5);
    expect(Math.max(...f32.flat())).toBeGreaterThan(20 * err(gpu)); // the maps are not ~0
    // and the CLI draws them
    const png = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vr-cuda-att-')), 'probes.png');
    const cli = vreflect(['infer', '--model', path.join(GOLDEN, c.model_dir), '--image', path.join(GOLDEN, c.image!), '--prompt', c.prompt,
      '--assistant-prefix', '<|lvr_start|>', '--max-new-tokens', '1', '--device', 'cuda', '--attention-map', png]);
    expect(cli.code).toBe(0);
    expect(fs.readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
  });

  test('bench infer\'s worker times prefill and decode on the CUDA session', () => {
    // The worker `bench infer --device cuda` spawns, on the tiny checkpoint (the bench's own 7B-shaped one is too
    // large for the emulator).
    const req = { model: path.join(GOLDEN, 'models', 'tiny-flat'), image: path.join(GOLDEN, 'images', 'odd_97x61.png'), prompt: 'What is this?',
      dtype: 'bf16', threads: 1, newTokens: 2, repeats: 1, warmup: 0, device: 'cuda' };
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'src', 'bench', 'ours_worker.js'), JSON.stringify(req)],
      { encoding: 'utf8', timeout: 60000, env: { ...process.env, VREFLECT_ADDON: EMU_ADDON } });
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout.trim());
    expect(out).toMatchObject({ ok: true, device: 'CUDA emulator (CPU)', dtype: 'bf16' });
    expect(out.runs[0].prefill_ms).toBeGreaterThan(0);
    expect(out.runs[0].decode_ms_per_token).toBeGreaterThan(0);
  });

  describe('bench train\'s worker on the GPU trainer', () => {
    // The worker `bench train --device cuda` spawns, on tiny-flat (the bench's own 7B-shaped checkpoint is too large
    // for the emulator); the same synthetic micro-batch as test/unit/bench/train_sides.test.ts.
    const MODEL = path.join(GOLDEN, 'models', 'tiny-flat');
    const spec = {
      samples: 1, tokensPerSample: 120, imageSize: 112, answerTokens: 20, latentCount: 8, box: [0.25, 0.25, 0.75, 0.75], vocab: 416, seed: 1,
      ids: { imStart: 351, imEnd: 352, visionStart: 369, visionEnd: 370, imagePad: 372, lvrStart: 374, lvr: 375, lvrLatentEnd: 376, lvrEnd: 377, textLimit: 350 },
    };
    const worker = (extra: object, env: NodeJS.ProcessEnv = {}) => {
      const req = { model: MODEL, batch: spec, dtype: 'bf16', threads: 1, steps: 2, warmup: 0, lr: 1e-2, maxGradNorm: 1, gradientAccumulationSteps: 2, ...extra };
      const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'src', 'bench', 'train_worker.js'), JSON.stringify(req)],
        { encoding: 'utf8', timeout: 120000, env: { ...process.env, VREFLECT_ADDON: EMU_ADDON, ...env } });
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
      expect(out.error).toBeUndefined();
      expect(r.status).toBe(0);
      return out;
    };
    // Parameter counts from the checkpoint's header (not from the trainer): trained = every non-visual tensor + the
    // BCM (initialised: 8 queries + MultiheadAttention + LayerNorm of width 64), frozen = visual.*.
    const header = () => {
      const buf = fs.readFileSync(path.join(MODEL, 'model.safetensors'));
      const h = JSON.parse(buf.subarray(8, 8 + Number(buf.readBigUInt64LE(0))).toString()) as Record<string, { shape: number[] }>;
      let trained = 0, frozen = 0;
      for (const [name, t] of Object.entries(h)) {
        if (name === '__metadata__') continue;
        const n = t.shape.reduce((a, b) => a * b, 1);
        if (name.startsWith('visual.')) frozen += n; else trained += n;
      }
      const D = 64;
      return { trained: trained + 8 * D + (3 * D * D + 3 * D) + (D * D + D) + 2 * D, frozen };
    };

    test('losses follow the CPU bf16 trainer; device memory as the placements hold it', () => {
      const mem = { VREFLECT_CUDA_EMU_MEMORY: String(1 << 30) };
      const gpu = worker({ device: 'cuda' }, mem);
      const host = worker({ device: 'cuda', optimizerStates: 'host' }, mem);
      const cpu = worker({});
      expect(gpu).toMatchObject({ ok: true, device: 'CUDA emulator (CPU)', checkpointing: true, tokens: 120, targets: 32 });
      expect(gpu.gpu).toMatchObject({ name: 'CUDA emulator (CPU)', memory_bytes: 1 << 30, used_before_bytes: 0, optimizer_states: 'gpu' });
      expect(cpu.device).toBe('cpu');
      // Same initial weights (tc.seed), same batch: step 1's loss as the CPU bf16 trainer's (GPU rounding rule of
      // test_trainer_gpu.cc, here 1% of the value), and the loss falls over the steps as on the CPU.
      for (const r of [gpu, host]) {
        expect(Math.abs(r.steps[0].loss - cpu.steps[0].loss)).toBeLessThan(0.01 * cpu.steps[0].loss);
        expect(Math.abs(r.steps[0].grad_norm - cpu.steps[0].grad_norm)).toBeLessThan(0.02 * cpu.steps[0].grad_norm);
        expect(r.steps[1].loss).toBeLessThan(r.steps[0].loss);
        expect(r.steps.every((s: any) => s.step_ms > 0 && s.fwd_bwd_ms > 0)).toBe(true);
      }
      // gpu placement: fp32 master + gradient + two moments (16 B) and a bf16 shadow per trained parameter, the
      // frozen ViT in bf16 (vision only: the LLM is not uploaded a second time), plus one micro-batch's arena.
      const { trained, frozen } = header();
      const floorGpu = 16 * trained + 2 * frozen;
      expect(gpu.gpu.peak_used_bytes).toBeGreaterThanOrEqual(floorGpu);
      expect(gpu.gpu.peak_used_bytes).toBeLessThan(floorGpu + 2 * trained + 2 * (1 << 20));
      // host placement: the moments and masters stay on the host: 8 B per trained parameter fewer at least.
      expect(host.gpu.optimizer_states).toBe('host');
      expect(host.gpu.peak_used_bytes).toBeLessThanOrEqual(gpu.gpu.peak_used_bytes - 8 * trained);
      // Without recomputation (the decoder keeps every layer): step 1's loss bit for bit (the same weights and batch,
      // the kept tensors are the recompute's bits), more device memory.
      const off = worker({ device: 'cuda', checkpointing: 'off' }, mem);
      expect(off).toMatchObject({ ok: true, checkpointing: false });
      expect(off.steps[0].loss).toBe(gpu.steps[0].loss);
      expect(off.gpu.peak_used_bytes).toBeGreaterThan(gpu.gpu.peak_used_bytes);
    });

    test('one-line refusal: fp32', () => {
      for (const [extra, msg] of [[{ dtype: 'fp32' }, /bf16 only/]] as const) {
        const req: Record<string, unknown> = { model: MODEL, batch: spec, dtype: 'bf16', threads: 1, steps: 1, warmup: 0, lr: 1e-2, maxGradNorm: 1, gradientAccumulationSteps: 1, device: 'cuda' };
        Object.assign(req, extra);
        const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'src', 'bench', 'train_worker.js'), JSON.stringify(req)],
          { encoding: 'utf8', timeout: 60000, env: { ...process.env, VREFLECT_ADDON: EMU_ADDON } });
        expect(r.status).toBe(1);
        const out = JSON.parse(r.stdout.trim());
        expect(out.ok).toBe(false);
        expect(out.error).toMatch(msg);
      }
    });
  });

  test('doctor: one device named "CUDA emulator (CPU)", ready for --device cuda', () => {
    const r = vreflect(['doctor', '--json']);
    expect(r.code).toBe(0);
    const c = JSON.parse(r.stdout).backends.cuda;
    expect(c.ready).toBe(true);
    expect(c.devices.map((d: any) => d.name)).toEqual(['CUDA emulator (CPU)']);
  });

  // The tensor-core attention tiles a call runs on the device, as the kernels resolve them (auto: the first of the
  // preference that fits the device's opt-in shared memory, which CUDAEMU_MAX_DYN_SMEM_KIB sets on the emulator).
  test('doctor: the GPU\'s shared memory per block and the attention tiles that run on it', () => {
    const dev = (env: NodeJS.ProcessEnv) => {
      const r = vreflect(['doctor', '--json'], env);
      expect(r.code).toBe(0);
      return JSON.parse(r.stdout).backends.cuda.devices[0];
    };
    expect(dev({})).toMatchObject({ smem_optin_bytes: 227 * 1024, attention_tiles: { forward: '64x64w4', backward: '64x64w4' } });
    expect(dev({ CUDAEMU_MAX_DYN_SMEM_KIB: '99', VREFLECT_ATTENTION_TILE_BWD: '128x32w8' }))
      .toMatchObject({ smem_optin_bytes: 99 * 1024, attention_tiles: { forward: '64x64w4', backward: '128x32w8' } });
    expect(dev({ VREFLECT_ATTENTION_TILE_FWD: '9x9' }).attention_tiles.error).toMatch(/^VREFLECT_ATTENTION_TILE_FWD=9x9 is not one of auto, 64x64w4, /);
    const text = vreflect(['doctor'], { CUDAEMU_MAX_DYN_SMEM_KIB: '99' });
    expect(text.stdout).toContain('attention tiles (99 KiB shared memory per block): forward 64x64w4, backward 64x64w4');
  });

  describe('one-line errors', () => {
    const c = goldenCase('flat_plain_odd_rep105');

    test('a GPU too small for the memory plan (VREFLECT_CUDA_EMU_MEMORY)', () => {
      expectOneLineError(vreflect(inferArgs(c, 'cuda'), { VREFLECT_CUDA_EMU_MEMORY: String(100 << 20) }), /^vreflect: error: --device cuda: inference needs about .* of GPU memory but 100\.0 MiB is available/);
    });

    test('the device allocation itself fails: bytes asked and free', () => {
      // Past the plan (Engine.load directly): the weights' arena on a 64 KiB emulated device.
      const script = `require(${JSON.stringify(path.join(ROOT, 'dist', 'src', 'infer', 'engine.js'))}).Engine.load(${JSON.stringify(path.join(GOLDEN, 'models', 'tiny-flat'))}, { device: 'cuda' })` +
        `.then(() => process.exit(3), (e) => { console.log(e.message); process.exit(0); })`;
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000, env: { ...process.env, VREFLECT_ADDON: EMU_ADDON, VREFLECT_CUDA_EMU_MEMORY: '65536' } });
      expect(r.status).toBe(0);
      expect(r.stdout.trim().split('\n')).toHaveLength(1);
      expect(r.stdout.trim()).toMatch(/^cuda: cannot allocate model weights: \d+ bytes \(\d+ MiB\) asked, 65536 bytes \(0 MiB\) of 0 MiB free \(out of memory\)$/);
    });

    test('--dtype fp32 is CPU only', () => {
      expectOneLineError(vreflect([...inferArgs(c, 'cuda'), '--dtype', 'fp32']), /--dtype fp32 runs on the CPU only/);
    });

    test('bench train: --gradient-checkpointing off on a GPU too small for every layer\'s activations names auto / on', () => {
      expectOneLineError(
        vreflect(['bench', 'train', '--device', 'cuda', '--torch', 'off', '--gradient-checkpointing', 'off'], { VREFLECT_CUDA_EMU_MEMORY: String(100 << 20) }),
        /^vreflect: error: --device cuda: bench train .* and no gradient checkpointing, 100\.0 MiB is available: pass --gradient-checkpointing auto or on, or lower --llm-layers/,
      );
    });

    test('bench train: a GPU too small for the plan, with the benchmark\'s own advice', () => {
      expectOneLineError(
        vreflect(['bench', 'train', '--device', 'cuda', '--torch', 'off'], { VREFLECT_CUDA_EMU_MEMORY: String(100 << 20) }),
        /^vreflect: error: --device cuda: bench train \(2 LLM \+ 4 ViT layers of the 7B, vocabulary 16384\) needs .* of GPU memory .* 100\.0 MiB is available: lower --llm-layers/,
      );
    });
  });
});
