// The training loop both stages share (stage1.ts / stage2.ts only set what differs): schedule, gradient
// accumulation, clipping, logging (metrics.jsonl + progress), checkpoints (every --save-steps, keeping
// --save-total-limit), exact resume (weights, AdamW moments, scheduler step, data cursor), SIGINT (finish the
// step in flight, save, exit cleanly), and --attention-maps pictures (src/viz/training_attention.ts).
import * as fs from 'fs';
import * as path from 'path';

import { TrainDataLoader, formatSkipSummary } from '../data';
import type { DataCursor } from '../data';
import type { TrainBatch } from '../data/batch';
import { openCheckpoint } from '../model/checkpoint';
import { loadModelConfig } from '../model/config';
import { loadTokenizer } from '../model/tokenizer';
import { readSafetensorsHeader } from '../model/safetensors';
import { loadAddon } from '../native/addon';
import { BoxAttentionMaps, createNativeTrainer, NativeTrainer, StepLosses } from '../native/trainer';
import { UserError } from '../util/errors';
import { log } from '../util/log';
import { startProgress } from '../util/progress';
import type { OptimizerStates } from '../plan/gpu_memory';
import type { Device } from '../plan/preflight';
import { writeBoxAttention } from '../viz/training_attention';
import { CheckpointMeta, saveCheckpoint } from './checkpoint_writer';
import { latestCheckpoint, rotateCheckpoints } from './checkpoint_rotation';
import { CheckpointingMode, enforceMemoryPlan, planTrainingMemory } from './memory_plan';
import { MetricsLog } from './metrics_log';
import { learningRate, ScheduleSpec, SchedulerKind } from './schedule';

export interface TrainOptions {
  stage: 1 | 2;
  model: string;
  dataPath: string;
  imageFolder?: string;
  outputDir: string;
  maxSteps: number;
  learningRate: number;
  weightDecay: number;
  warmupRatio: number;
  lrScheduler: SchedulerKind;
  gradientAccumulationSteps: number;
  perDeviceBatchSize: number;
  maxGradNorm: number;
  seed: number;
  shuffle: boolean;
  packing: boolean;
  dtype: 'fp32' | 'bf16';
  /** recompute LLM layers in the backward: on, off, or auto (off when the kept activations fit; default) */
  gradientCheckpointing?: CheckpointingMode;
  saveSteps: number;
  saveTotalLimit: number;
  /** a checkpoint-N folder, or 'latest' for the newest complete one under outputDir */
  resume?: string;
  lambdaResampler: number;
  lambdaAttn: number;
  latentCount: number;
  imageMinPixels: number;
  imageMaxPixels: number;
  strict: boolean;
  threads?: number;
  saveWeightsDtype: 'bf16' | 'fp32';
  /** write teacher-vs-student attention PNGs here (DIR/step-N.png); off when absent */
  attentionMapsDir?: string;
  /** draw at step 1 and every N-th step */
  attentionMapsEvery?: number;
  /** the resolved --device (default cpu); cuda runs the GPU trainer (bf16) */
  device?: Device;
  /** cuda: where AdamW state lives, resolved from the memory plan (default gpu) */
  optimizerStates?: OptimizerStates;
  /** cuda: whether the GPU decoder recomputes each layer, resolved from the GPU memory plan (trainDevicePreflight);
   * default: on unless --gradient-checkpointing off (auto needs the plan) */
  cudaCheckpointing?: boolean;
}

export interface TrainSummary {
  steps: number;
  lastLosses?: StepLosses & { grad_norm: number; lr: number };
  interrupted: boolean;
  outputDir: string;
}

interface ResumeState {
  version: 1;
  step: number;
  stage: 1 | 2;
  data: DataCursor;
  schedule: ScheduleSpec;
  seed: number;
}

/** Micro-batch losses of one optimizer step, averaged as HF logs them (mean over the accumulation). */
function meanLosses(all: StepLosses[]): StepLosses {
  const m = (k: keyof StepLosses) => all.reduce((a, l) => a + Number(l[k] ?? 0), 0) / all.length;
  return {
    loss: m('loss'),
    loss_ce: m('loss_ce'),
    loss_resampler: m('loss_resampler'),
    loss_mse: m('loss_mse'),
    loss_kl: m('loss_kl'),
    resampler_skipped: all.some((l) => l.resampler_skipped),
    tokens: all.reduce((a, l) => a + l.tokens, 0),
    targets: all.reduce((a, l) => a + l.targets, 0),
    boxes: all.reduce((a, l) => a + l.boxes, 0),
  };
}

export async function runTraining(o: TrainOptions): Promise<TrainSummary> {
  if (!fs.existsSync(o.model)) throw new UserError(`model directory not found: ${o.model}`);
  if (!fs.existsSync(o.dataPath)) throw new UserError(`--data-path not found: ${o.dataPath}`);
  const device = o.device ?? 'cpu';
  fs.mkdirSync(o.outputDir, { recursive: true });
  const mapsEvery = o.attentionMapsEvery ?? 50;
  if (o.attentionMapsDir) {
    if (!Number.isInteger(mapsEvery) || mapsEvery < 1) throw new UserError('--attention-maps-every must be an integer >= 1');
    try {
      fs.mkdirSync(o.attentionMapsDir, { recursive: true });
    } catch (e) {
      throw new UserError(`--attention-maps: cannot create ${o.attentionMapsDir}: ${(e as Error).message}`);
    }
  }

  let resumeDir: string | undefined;
  if (o.resume) {
    resumeDir = o.resume === 'latest' ? latestCheckpoint(o.outputDir) : o.resume;
    if (!resumeDir || !fs.existsSync(path.join(resumeDir, 'trainer_state.json')))
      throw new UserError(`--resume: no complete checkpoint (trainer_state.json) at ${resumeDir ?? o.outputDir}`);
  }

  const cfg = loadModelConfig(o.model);
  const tokenizer = await loadTokenizer(o.model, cfg);
  const ckpt = openCheckpoint(o.model, cfg);
  const id = (t: string) => {
    const v = tokenizer.tokenToId(t);
    if (v === undefined) throw new UserError(`the tokenizer of ${o.model} has no ${t} token (not a V-Reflection tokenizer)`);
    return v;
  };
  const ids = { lvrStart: id('<|lvr_start|>'), lvr: id('<|lvr|>'), lvrLatentEnd: id('<|lvr_latent_end|>'), lvrEnd: id('<|lvr_end|>') };
  if (o.stage === 2 && !ckpt.lvrModules.some((n) => n.startsWith('box_feature_resampler.')))
    throw new UserError(`stage 2 needs a stage-1 checkpoint: ${o.model} has no box_feature_resampler.* tensors`);

  // The host memory plan is the CPU trainer's; on cuda the GPU plan (preflight) decided checkpointing (auto: off
  // when the GPU plan without recomputation fits), logged there with its bytes.
  const cudaCheckpointing = o.cudaCheckpointing ?? o.gradientCheckpointing !== 'off';
  const plan = planTrainingMemory(cfg, [...ckpt.tensors, ...ckpt.extra], {
    dtype: o.dtype, packing: o.packing, perDeviceBatchSize: o.perDeviceBatchSize, imageMaxPixels: o.imageMaxPixels, stage: o.stage,
    checkpointing: device === 'cuda' ? (cudaCheckpointing ? 'on' : 'off') : o.gradientCheckpointing ?? 'auto',
  });
  log().info({ memory_plan: plan }, 'memory plan');
  if (device === 'cpu') enforceMemoryPlan(plan);

  const data = TrainDataLoader.open({
    dataPath: o.dataPath,
    imageFolder: o.imageFolder,
    tokenizer,
    stage: o.stage,
    latentCount: o.latentCount,
    imageMinPixels: o.imageMinPixels,
    imageMaxPixels: o.imageMaxPixels,
    preprocess: cfg.preprocess,
    shuffle: o.shuffle,
    seed: o.seed,
    packing: o.packing,
    batchSize: o.perDeviceBatchSize,
    strict: o.strict,
  });

  if (o.threads) loadAddon().setThreads(o.threads);
  const trainer: NativeTrainer = await createNativeTrainer(cfg, o.dtype, [...ckpt.tensors, ...ckpt.extra], {
    stage: o.stage,
    latentCount: o.latentCount,
    lambdaResampler: o.lambdaResampler,
    lambdaAttn: o.lambdaAttn,
    weightDecay: o.weightDecay,
    seed: o.seed,
    lvrId: ids.lvr,
    gradientCheckpointing: plan.checkpointing,
    device,
    optimizerStates: device === 'cuda' ? o.optimizerStates ?? 'gpu' : undefined,
  });

  // A picture that fails to be written is worth a warning, never the training run.
  const drawAttention = async (file: string, batch: TrainBatch, box: BoxAttentionMaps | undefined) => {
    if (!box) return;
    try {
      await writeBoxAttention(file, batch, box, cfg.preprocess);
      log().debug({ file, box: box.box, sample: batch.sampleIds[box.sample] }, 'attention map written');
    } catch (e) {
      log().warn({ file, err: (e as Error).message }, 'attention map not written');
    }
  };

  const schedule: ScheduleSpec = { kind: o.lrScheduler, peakLr: o.learningRate, maxSteps: o.maxSteps, warmupRatio: o.warmupRatio };
  let step = 0;
  if (resumeDir) {
    const st = JSON.parse(fs.readFileSync(path.join(resumeDir, 'trainer_state.json'), 'utf8')) as ResumeState;
    if (st.stage !== o.stage) throw new UserError(`--resume: ${resumeDir} is a stage-${st.stage} checkpoint`);
    const stateFile = path.join(resumeDir, 'optimizer_state.safetensors');
    const h = readSafetensorsHeader(stateFile);
    const tensors = [...h.tensors].map(([name, t]) => ({
      name, storedName: name, file: path.resolve(stateFile), offset: h.dataStart + t.begin, nbytes: t.end - t.begin, dtype: t.dtype, shape: t.shape,
    }));
    await trainer.loadState(tensors, st.step);
    await data.restore(st.data);
    step = st.step;
    log().info({ checkpoint: resumeDir, step }, 'resumed');
  }

  const meta: CheckpointMeta = {
    stage: o.stage, latentCount: o.latentCount, lambdaResampler: o.lambdaResampler, lambdaAttn: o.lambdaAttn, ids,
    imageMinPixels: o.imageMinPixels, imageMaxPixels: o.imageMaxPixels,
  };
  const save = async (dir: string, withResume: boolean) =>
    saveCheckpoint({
      dir, srcDir: o.model, src: cfg, meta, trainer, weightsDtype: o.saveWeightsDtype,
      resume: withResume
        ? { state: { version: 1, step, stage: o.stage, data: data.state(), schedule, seed: o.seed } satisfies ResumeState }
        : undefined,
    });

  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130); // a second Ctrl-C: give up at once
    interrupted = true;
    log().warn('SIGINT: finishing the current step, then saving a checkpoint (Ctrl-C again to abort)');
  };
  process.on('SIGINT', onSigint);

  const metrics = new MetricsLog(path.join(o.outputDir, 'metrics.jsonl'), resumeDir ? step : undefined);
  const bar = startProgress(`train stage ${o.stage}`, o.maxSteps);
  let last: TrainSummary['lastLosses'];
  const t0 = Date.now();
  try {
    while (step < o.maxSteps && !interrupted) {
      const micro: StepLosses[] = [];
      // --attention-maps: capture the first box of the step's first micro-batch that has one (step 1 and every
      // N-th), i.e. the maps of this step's forward, before its update.
      let wantMaps = o.attentionMapsDir !== undefined && (step + 1 === 1 || (step + 1) % mapsEvery === 0);
      for (let a = 0; a < o.gradientAccumulationSteps; a++) {
        const batch = await data.next();
        if (wantMaps && batch.numBoxes > 0) {
          const r = await trainer.forwardBackward(batch, 1 / o.gradientAccumulationSteps, { maxBoxes: 1 });
          wantMaps = false;
          const { attention, ...losses } = r;
          micro.push(losses);
          await drawAttention(path.join(o.attentionMapsDir!, `step-${step + 1}.png`), batch, attention[0]);
        } else {
          micro.push(await trainer.forwardBackward(batch, 1 / o.gradientAccumulationSteps));
        }
      }
      const lr = learningRate(schedule, step);
      const gradNorm = await trainer.optimizerStep(lr, o.maxGradNorm);
      step++;
      const l = meanLosses(micro);
      last = { ...l, grad_norm: gradNorm, lr };
      const rec: Record<string, unknown> = {
        step, loss: l.loss, loss_ce: l.loss_ce, loss_resampler: l.loss_resampler,
        ...(o.stage === 2 ? { loss_mse: l.loss_mse, loss_kl: l.loss_kl } : {}),
        grad_norm: gradNorm, lr, tokens: l.tokens, boxes: l.boxes,
        resampler_skipped: l.resampler_skipped, elapsed_s: (Date.now() - t0) / 1000,
      };
      metrics.write(rec);
      bar.update(step, `loss ${l.loss.toFixed(4)}`);
      if (!process.stderr.isTTY) log().info(rec, 'step');
      if (o.saveSteps > 0 && step % o.saveSteps === 0 && step < o.maxSteps) {
        await save(path.join(o.outputDir, `checkpoint-${step}`), true);
        rotateCheckpoints(o.outputDir, o.saveTotalLimit);
      }
    }
    if (interrupted) {
      await save(path.join(o.outputDir, `checkpoint-${step}`), true);
      log().warn({ step, checkpoint: path.join(o.outputDir, `checkpoint-${step}`) }, 'interrupted: checkpoint saved; continue with --resume latest');
    } else {
      await save(path.join(o.outputDir, `checkpoint-${step}`), true);
      rotateCheckpoints(o.outputDir, o.saveTotalLimit);
      await save(o.outputDir, false);
    }
  } finally {
    bar.stop();
    metrics.close();
    process.removeListener('SIGINT', onSigint);
    const summary = data.summary();
    log().info({ skips: summary }, formatSkipSummary(summary));
  }
  return { steps: step, lastLosses: last, interrupted, outputDir: o.outputDir };
}
