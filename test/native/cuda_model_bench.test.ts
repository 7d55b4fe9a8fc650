// vreflect_cuda_model_bench at --shape tiny on the CPU emulator (target vreflect_cuda_model_bench_emu, built by
// cmake-js beside the addon): the model bench the GPU session runs at the 7B shape (native/cuda/bench/model) must
// produce a complete report. Checked against things the bench does not compute itself: the token counts the
// synthetic layouts imply, the CPU Trainer's (fp32) losses on the same batch and checkpoint (--check-cpu), ln(vocab)
// for the cross-entropy of random weights, the same first losses under both optimizer placements, the checkpoint
// reused on the second run, and a one-line error for a bad shape. Skipped (with a warning) when the build found no
// CUDA headers, as test/native/cuda_emu.test.ts.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { addonPath } from '../../src/native/addon';
import { planInference, planTraining } from '../../src/plan/gpu_memory';
import { PRESETS } from '../../src/plan/model_shape';

const BINARY = 'vreflect_cuda_model_bench_emu';
const SKIP_MARKER = 'vreflect_cuda_emu_tests.skipped';

function locate(): { binary: string } | { skipped: string } {
  const addonDir = path.dirname(addonPath());
  const dirs = [addonDir, path.dirname(addonDir)];
  for (const dir of dirs) if (fs.existsSync(path.join(dir, BINARY))) return { binary: path.join(dir, BINARY) };
  for (const dir of dirs) {
    const marker = path.join(dir, SKIP_MARKER);
    if (fs.existsSync(marker)) return { skipped: fs.readFileSync(marker, 'utf8').trim() };
  }
  throw new Error(`${BINARY} not found (looked in ${dirs.join(', ')}); rebuild with cmake-js compile`);
}

// The synthetic layouts (native/cuda/bench/model/bench_infer.h, bench_train.h), small enough for the emulator.
const IMAGE_TOKENS = 16, PROMPT_TOKENS = 12, NEW_TOKENS = 6, LATENT_STEPS = 3;
const TRAIN_TOKENS = 96, TRAIN_IMAGE_TOKENS = 16, ANSWER_TOKENS = 8, LATENT_COUNT = 8;
const TINY_VOCAB = 416;

// The emulator reports device memory only when VREFLECT_CUDA_EMU_MEMORY gives it a size.
function run(bin: string, args: string[], memory = 4e9): { status: number | null; json?: any; stderr: string } {
  const res = spawnSync(bin, args, { encoding: 'utf8', timeout: 60_000, env: { ...process.env, VREFLECT_CUDA_EMU_MEMORY: String(memory) } });
  if (res.error) throw new Error(`${BINARY} could not run: ${res.error.message}`);
  return { status: res.status, json: res.stdout.trim() ? JSON.parse(res.stdout) : undefined, stderr: res.stderr };
}

describe('CUDA model bench on the CPU emulator (tiny shape)', () => {
  const found = locate();
  if ('skipped' in found) {
    it.skip(`skipped: ${found.skipped}`, () => undefined);
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vreflect-model-bench-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const common = ['--shape', 'tiny', '--checkpoint-dir', path.join(dir, 'ckpt')];
  const trainArgs = ['--tokens', String(TRAIN_TOKENS), '--train-image-tokens', String(TRAIN_IMAGE_TOKENS), '--answer-tokens', String(ANSWER_TOKENS),
    '--latent-count', String(LATENT_COUNT), '--check-cpu'];
  let first: any;

  it('runs infer + train and reports every figure', () => {
    const r = run(found.binary, ['all', ...common, '--image-tokens', String(IMAGE_TOKENS), '--prompt-tokens', String(PROMPT_TOKENS),
      '--new-tokens', String(NEW_TOKENS), '--latent-steps', String(LATENT_STEPS), '--repeats', '2', ...trainArgs, '--steps', '2']);
    expect({ status: r.status, stderr: r.status === 0 ? '' : r.stderr }).toEqual({ status: 0, stderr: '' });
    const j = r.json;
    first = j;
    expect(j.device.kind).toBe('emulator');
    expect(j.shape).toMatchObject({ preset: 'tiny', layers: 3, vit_layers: 4, vocab: TINY_VOCAB, hidden: 64 });
    expect(j.checkpoint.generated).toBe(true);
    expect(fs.existsSync(path.join(dir, 'ckpt', 'config.json'))).toBe(true);

    const inf = j.infer;
    // <|im_start|> text <|vision_start|> pads <|vision_end|> text: the image's tokens plus the text tokens.
    expect(inf.prompt_tokens).toBe(IMAGE_TOKENS + PROMPT_TOKENS);
    expect(inf.patches).toBe(4 * IMAGE_TOKENS);
    expect(inf.generated).toBe(NEW_TOKENS);
    expect(inf.decode_forwards).toBe(NEW_TOKENS - 1); // the first token comes from the prefill's logits
    expect(inf.prefill_ms_runs).toHaveLength(2);
    for (const k of ['prefill_ms', 'prefill_tokens_per_s', 'prefill_tflops', 'decode_ms_per_token', 'decode_tokens_per_s']) expect(inf[k]).toBeGreaterThan(0);
    expect(inf.decode_tokens_per_s).toBeCloseTo(1000 / inf.decode_ms_per_token, 0);
    // The whole generate call per forward can only be slower than the forwards alone.
    expect(inf.decode_wall_ms_per_token).toBeGreaterThanOrEqual(inf.decode_ms_per_token);
    expect(inf.latent).toMatchObject({ generated: NEW_TOKENS, latent_steps_run: LATENT_STEPS, latent_input_forwards: LATENT_STEPS });
    // CUDA graphs on vs off (2 sessions each): the "on" decode launches a graph for every step but the first (eager;
    // the second is captured, then launched like the rest), the "off" decode none; the main runs used auto.
    expect(inf.graphs_mode).toBe('auto');
    expect(inf.graphs.on).toMatchObject({ decode_forwards: 2 * (NEW_TOKENS - 1), graph_launches: 2 * (NEW_TOKENS - 2) });
    expect(inf.graphs.off).toMatchObject({ decode_forwards: 2 * (NEW_TOKENS - 1), graph_launches: 0 });
    expect(inf.graphs.on.decode_wall_tokens_per_s).toBeGreaterThan(0);
    expect(inf.graphs.wall_speedup).toBeGreaterThan(0);
    // Memory: the arenas are on the device, and the weights arena is the plan's weight items up to 256-B rounding.
    const mem = inf.memory;
    expect(mem.peak_used).toBeGreaterThanOrEqual(mem.arenas.weights + mem.arenas.llm_scratch);
    const planWeights = mem.plan.items.filter((i: any) => /weights/.test(i.what)).reduce((a: number, i: any) => a + i.bytes, 0);
    expect(Math.abs(mem.arenas.weights - planWeights) / planWeights).toBeLessThan(0.03);
    expect(inf.plan_inputs).toEqual({ shape: 'tiny', imageTokens: IMAGE_TOKENS, promptTokens: PROMPT_TOKENS, maxNewTokens: NEW_TOKENS, latentSteps: LATENT_STEPS });

    const tr = j.train;
    expect(tr).toMatchObject({ stage: 1, tokens: TRAIN_TOKENS, visual_tokens: TRAIN_IMAGE_TOKENS, patches: 4 * TRAIN_IMAGE_TOKENS, boxes: 1 });
    // Targets: every response token but the first is predicted: <|lvr_start|> K x <|lvr|> <|lvr_end|> answer <|im_end|> \n.
    expect(tr.targets).toBe(1 + LATENT_COUNT + 1 + ANSWER_TOKENS + 2);
    expect(tr.losses).toHaveLength(3); // 1 warm-up + 2 timed steps
    for (const k of ['step_ms', 'tokens_per_s', 'model_flop', 'achieved_tflops']) expect(tr[k]).toBeGreaterThan(0);
    expect(tr.mfu).toBeNull(); // no datasheet peak for the emulator
    const l0 = tr.losses[0];
    for (const l of tr.losses) {
      expect(Number.isFinite(l.loss)).toBe(true);
      expect(l).toMatchObject({ tokens: TRAIN_TOKENS, targets: tr.targets, boxes: 1, resampler_skipped: false });
    }
    // Random weights: the cross-entropy is about ln(vocab); the CPU Trainer (fp32) gives the same losses.
    expect(Math.abs(l0.loss_ce - Math.log(TINY_VOCAB))).toBeLessThan(0.3);
    const cpu = tr.cpu_check.first_losses;
    expect(Math.abs(l0.loss - cpu.loss)).toBeLessThan(2e-3 * Math.abs(cpu.loss));
    expect(Math.abs(l0.loss_ce - cpu.loss_ce)).toBeLessThan(2e-3 * Math.abs(cpu.loss_ce));
    expect(Math.abs(l0.loss_resampler - cpu.loss_resampler)).toBeLessThan(2e-2 * Math.abs(cpu.loss_resampler) + 1e-4);
    expect(tr.grad_norms.every((n: number) => n > 0 && Number.isFinite(n))).toBe(true);
    // The ported training plan (planTraining, stage 1, gpu placement) against the trainer's own allocations.
    const plan = tr.memory.plan.items;
    const bytes = (re: RegExp, where: string) => plan.filter((i: any) => i.where === where && re.test(i.what)).reduce((a: number, i: any) => a + i.bytes, 0);
    const state = bytes(/master|gradients|AdamW|shadows/, 'gpu');
    expect(Math.abs(tr.memory.param_storage - state) / state).toBeLessThan(0.01); // 256-B rounding per tensor
    expect(tr.memory.host_param_store).toBe(bytes(/fp32 weights on the host/, 'host'));
    // --checkpointing auto on a 4 GB device: the tiny model's plan without recomputation fits, so the decoder keeps
    // every layer's activations; its arena is the plan's decoder items (gpu_memory.ts decoderActivationItems) plus
    // at most 255 B of rounding per piece (37 pieces at 3 layers).
    expect(tr).toMatchObject({ checkpointing: false, checkpointing_mode: 'auto' });
    const decoder = bytes(/^decoder/, 'gpu');
    expect(plan.some((i: any) => /every layer's activations kept/.test(i.what))).toBe(true);
    expect(tr.memory.decoder_activations).toBeGreaterThanOrEqual(decoder);
    expect(tr.memory.decoder_activations).toBeLessThan(decoder + 256 * (17 + 10 * 3));
  });

  it('reuses the checkpoint; host optimizer states give the same first losses', () => {
    expect(first).toBeDefined();
    const r = run(found.binary, ['train', ...common, ...trainArgs, '--steps', '1', '--train-warmup', '0', '--optimizer-states', 'host']);
    expect({ status: r.status, stderr: r.status === 0 ? '' : r.stderr }).toEqual({ status: 0, stderr: '' });
    expect(r.json.checkpoint.generated).toBe(false);
    expect(r.json.infer).toBeUndefined();
    expect(r.json.train.optimizer_states).toBe('host');
    expect(r.json.train.memory.pinned_staging).toBeGreaterThan(0);
    expect(r.json.train.losses[0].loss).toBeCloseTo(first.train.losses[0].loss, 6);
    // The ported host-placement plan: the host arrays and the pinned staging exactly, the device storage up to rounding.
    const mem = r.json.train.memory;
    const bytes = (re: RegExp, where: string) => mem.plan.items.filter((i: any) => i.where === where && re.test(i.what)).reduce((a: number, i: any) => a + i.bytes, 0);
    expect(mem.host_param_store).toBe(bytes(/master|AdamW/, 'host'));
    expect(mem.pinned_staging).toBe(bytes(/pinned/, 'host'));
    const state = bytes(/shadows|fp32 copies|gradients/, 'gpu');
    expect(Math.abs(mem.param_storage - state) / state).toBeLessThan(0.01);
  });

  it('runs stage 2 on a random BCM teacher: the CPU Trainer gives the same losses', () => {
    const r = run(found.binary, ['train', ...common, ...trainArgs, '--stage', '2', '--steps', '1', '--train-warmup', '0']);
    expect({ status: r.status, stderr: r.status === 0 ? '' : r.stderr }).toEqual({ status: 0, stderr: '' });
    const tr = r.json.train;
    expect(fs.existsSync(path.join(dir, 'ckpt', 'bcm_head.safetensors'))).toBe(true);
    // Stage 2 ignores the <|lvr|> targets: the K targets that predict a slot go.
    expect(tr).toMatchObject({ stage: 2, targets: 1 + ANSWER_TOKENS + 2 + 1 });
    const [l, cpu] = [tr.losses[0], tr.cpu_check.first_losses];
    for (const k of ['loss', 'loss_ce', 'loss_mse', 'loss_kl']) {
      expect(l[k]).toBeGreaterThan(0);
      expect(Math.abs(l[k] - cpu[k])).toBeLessThan(2e-3 * Math.abs(cpu[k]));
    }
    // Upstream's stage-2 weight 1.0: the total is CE + MSE + KL.
    expect(l.loss).toBeCloseTo(l.loss_ce + l.loss_mse + l.loss_kl, 4);
    expect(tr.memory.plan).toBeNull();
  });

  it('ports the memory plans: src/plan/gpu_memory.ts gives the same bytes at the 7B and 3B shapes', () => {
    const big = 2 ** 50; // capacities that never force chunks
    for (const [preset, placement, imageTokens, tokens, checkpointing] of [['7b', 'host', 16384, 4096, 'on'], ['7b', 'host', 16384, 4096, 'off'],
      ['7b', 'gpu', 256, 1024, 'on'], ['3b', 'host', 1024, 2048, 'on'], ['3b', 'gpu', 1024, 2048, 'off']] as const) {
      const r = run(found.binary, ['plan', '--shape', preset, '--image-tokens', String(imageTokens), '--prompt-tokens', '49', '--new-tokens', '128',
        '--latent-steps', '8', '--tokens', String(tokens), '--optimizer-states', placement, '--checkpointing', checkpointing]);
      expect({ status: r.status, stderr: r.status === 0 ? '' : r.stderr }).toEqual({ status: 0, stderr: '' });
      const inf = planInference({ shape: PRESETS[preset], imageTokens, promptTokens: 49, maxNewTokens: 128, latentSteps: 8, gpuCapacity: big, hostCapacity: big });
      expect([preset, r.json.infer.gpu_bytes]).toEqual([preset, inf.gpuBytes]);
      const tr = planTraining({ shape: PRESETS[preset], stage: 1, tokens, visualTokens: 576, optimizerStates: placement, checkpointing, gpuCapacity: big, hostCapacity: big });
      expect(tr.checkpointing).toBe(checkpointing === 'on');
      expect([preset, placement, checkpointing, r.json.train.gpu_bytes, r.json.train.host_bytes]).toEqual([preset, placement, checkpointing, tr.gpuBytes, tr.hostBytes]);
    }
  });

  it('reports a section that runs out of device memory as an error and goes on', () => {
    const r = run(found.binary, ['all', ...common, '--image-tokens', '16', '--prompt-tokens', '12', '--new-tokens', '4', '--repeats', '1',
      ...trainArgs, '--steps', '1'], 3e6);
    expect(r.status).toBe(1);
    expect(r.json.infer.error).toMatch(/do not fit the GPU/);
    expect(r.json.train.error).toMatch(/cannot allocate training parameters .*out of memory/);
  });

  it('answers a bad shape with one line', () => {
    const r = run(found.binary, ['infer', '--shape', '9b', '--checkpoint-dir', path.join(dir, 'none')]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/--shape must be 7b, 3b or tiny, got '9b'/)]);
  });
});
