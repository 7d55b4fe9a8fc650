// The demo's three training runs, each a plain runTraining call (the loop `vreflect train-stage1/2` runs),
// and what the report needs from each: the losses of the first and last steps, read back from metrics.jsonl.
import * as fs from 'fs';
import * as path from 'path';

import { runTraining, TrainOptions } from '../train/run';
import { DEMO_MAX_PIXELS, DEMO_MIN_PIXELS } from './tiny_model';

export interface StagePlan {
  /** shown in the report */
  name: string;
  stage: 1 | 2;
  steps: number;
  learningRate: number;
  /** stage 1: weight of the alignment loss (0 = cross-entropy only); stage 2: weight of MSE + KL */
  lambdaResampler: number;
}

export interface StageResult {
  plan: StagePlan;
  model: string;
  outputDir: string;
  /** the checkpoint-N folder with the resume state */
  checkpoint: string;
  first: Record<string, number>;
  /** mean over the last tenth of the steps (at least one): a single step of a 4-sample batch is noisy */
  last: Record<string, number>;
  seconds: number;
  /** Ctrl-C: the loop saved a checkpoint and stopped early */
  interrupted: boolean;
}

export const LOSS_KEYS = ['loss', 'loss_ce', 'loss_resampler', 'loss_mse', 'loss_kl'] as const;

function readMetrics(dir: string): Record<string, number>[] {
  return fs
    .readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

function pick(rows: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of LOSS_KEYS) {
    const vals = rows.map((r) => r[k]).filter((v) => typeof v === 'number' && Number.isFinite(v));
    if (vals.length) out[k] = vals.reduce((a, b) => a + b, 0) / vals.length;
  }
  return out;
}

export interface StageContext {
  dataPath: string;
  seed: number;
  threads?: number;
}

export async function runStage(plan: StagePlan, model: string, outputDir: string, ctx: StageContext): Promise<StageResult> {
  const t0 = Date.now();
  fs.rmSync(outputDir, { recursive: true, force: true });
  const o: TrainOptions = {
    stage: plan.stage,
    model,
    dataPath: ctx.dataPath,
    outputDir,
    maxSteps: plan.steps,
    learningRate: plan.learningRate,
    weightDecay: 0.1,
    warmupRatio: 0.03,
    lrScheduler: 'cosine',
    gradientAccumulationSteps: 1, // one pack of up to 4 samples per step
    perDeviceBatchSize: 1,
    maxGradNorm: 1.0,
    seed: ctx.seed,
    shuffle: true,
    packing: true,
    dtype: 'fp32',
    saveSteps: 0, // only the final checkpoint-N and model
    saveTotalLimit: 1,
    lambdaResampler: plan.lambdaResampler,
    lambdaAttn: 1.0,
    latentCount: 8,
    imageMinPixels: DEMO_MIN_PIXELS,
    imageMaxPixels: DEMO_MAX_PIXELS,
    strict: true, // the demo writes every record itself: a skipped one would be a bug
    threads: ctx.threads,
    saveWeightsDtype: 'fp32',
  };
  const r = await runTraining(o);
  const rows = readMetrics(outputDir);
  const tail = rows.slice(-Math.max(1, Math.floor(rows.length / 10)));
  return {
    plan,
    model,
    outputDir,
    checkpoint: path.join(outputDir, `checkpoint-${r.steps}`),
    first: pick(rows.slice(0, 1)),
    last: pick(tail),
    seconds: (Date.now() - t0) / 1000,
    interrupted: r.interrupted,
  };
}
