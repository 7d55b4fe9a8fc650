// vreflect train-stage1 / train-stage2: BCM training and DAC distillation. Upstream's release hyper-parameters
// (scripts_release/train/*.sh, method.md §8.1, §9.1, §14) are the defaults; only what differs between the stages
// is set per stage here, the loop is src/train/run.ts.
import type { Argv, CommandModule } from 'yargs';

import { DEFAULT_TRAIN_MAX_PIXELS, DEFAULT_TRAIN_MIN_PIXELS } from '../../data';
import { trainDevicePreflight } from '../../plan/device_runs';
import { DEVICE_OPTION, OPTIMIZER_STATES_OPTION } from '../../plan/preflight';
import { runTraining, TrainOptions } from '../../train/run';
import { UserError } from '../../util/errors';
import { requireIntArg } from '../int_arg';
import { log } from '../../util/log';

interface StageDefaults {
  stage: 1 | 2;
  learningRate: number;
  lambdaResampler: number;
  saveSteps: number;
  saveTotalLimit: number;
}

const STAGES: Record<1 | 2, StageDefaults> = {
  1: { stage: 1, learningRate: 1e-5, lambdaResampler: 0.5, saveSteps: 300, saveTotalLimit: 10 },
  2: { stage: 2, learningRate: 1e-6, lambdaResampler: 1.0, saveSteps: 100, saveTotalLimit: 25 },
};

function builder(d: StageDefaults) {
  return (y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: d.stage === 1 ? 'Qwen2.5-VL checkpoint directory (with the 4 LVR tokens in its tokenizer)' : 'stage-1 checkpoint directory (holds box_feature_resampler.*)' })
      .option('data-path', { type: 'string', demandOption: true, describe: 'meta JSON listing {ds_name, data_path, image_folder, ds_type}' })
      .option('image-folder', { type: 'string', describe: "overrides every meta entry's image_folder" })
      .option('output-dir', { type: 'string', demandOption: true, describe: 'checkpoint-N folders, metrics.jsonl and the final model' })
      .option('max-steps', { type: 'number', default: 2500, describe: 'optimizer steps' })
      .option('learning-rate', { type: 'number', default: d.learningRate })
      .option('weight-decay', { type: 'number', default: 0.1, describe: 'AdamW decay on trainable tensors with >= 2 dims' })
      .option('lr-scheduler', { choices: ['cosine', 'constant'] as const, default: 'cosine' as const })
      .option('warmup-ratio', { type: 'number', default: 0.03 })
      .option('gradient-accumulation-steps', { type: 'number', default: 8 })
      .option('per-device-batch-size', { type: 'number', default: 1, describe: 'samples per micro-batch without packing (packing: one pack)' })
      .option('max-grad-norm', { type: 'number', default: 1.0, describe: 'global-norm clipping (0: off)' })
      .option('enable-data-packing', { type: 'boolean', default: true, describe: 'InternVL-style packs (4 x 4096 tokens) as varlen batches' })
      .option('dtype', { choices: ['fp32', 'bf16'] as const, default: 'bf16' as const, describe: 'GEMM precision (master weights and optimizer states are fp32)' })
      .option('gradient-checkpointing', {
        choices: ['auto', 'on', 'off'] as const,
        default: 'auto' as const,
        describe: 'recompute each LLM layer in the backward (less memory, one more forward); auto: off when the memory plan says the kept activations fit. Same results either way',
      })
      .option('seed', { type: 'number', default: 42 })
      .option('shuffle', { type: 'boolean', default: true, describe: '--no-shuffle keeps meta/file order (wrapping around)' })
      .option('save-steps', { type: 'number', default: d.saveSteps })
      .option('save-total-limit', { type: 'number', default: d.saveTotalLimit })
      .option('save-dtype', { choices: ['bf16', 'fp32'] as const, default: 'bf16' as const, describe: 'dtype of the saved model weights (resume state is always fp32)' })
      .option('resume', { type: 'string', describe: "a checkpoint-N folder, or 'latest'" })
      .option('lambda-resampler', { type: 'number', default: d.lambdaResampler, describe: d.stage === 1 ? 'weight of the alignment loss' : 'weight of (MSE + lambda-attn x KL)' })
      .option('lambda-attn', { type: 'number', default: 1.0, describe: 'stage 2: weight of the attention-transfer KL' })
      .option('latent-tokens', { type: 'number', default: 8, describe: '<|lvr|> slots per box = BCM queries' })
      .option('image-min-pixels', { type: 'number', default: DEFAULT_TRAIN_MIN_PIXELS })
      .option('image-max-pixels', { type: 'number', default: DEFAULT_TRAIN_MAX_PIXELS })
      .option('strict', { type: 'boolean', default: false, describe: 'fail on the first bad sample instead of a counted skip' })
      .option('attention-maps', {
        type: 'string',
        describe: d.stage === 2
          ? 'write DIR/step-N.png: teacher (BCM) vs student (DAC) attention of one box per latent query, over the image'
          : 'write DIR/step-N.png: the BCM attention of one box per latent query, over the image',
      })
      .option('attention-maps-every', { type: 'number', default: 50, describe: 'with --attention-maps: draw at step 1 and every N-th step' })
      .option('threads', { type: 'number' })
      .option('device', DEVICE_OPTION)
      .option('optimizer-states', OPTIMIZER_STATES_OPTION);
}

function makeTrainCommand(d: StageDefaults): CommandModule<object, any> {
  return {
    command: `train-stage${d.stage}`,
    describe: d.stage === 1 ? 'stage 1 (BCM): box-guided compression, CE + symmetric decoupled alignment' : 'stage 2 (DAC): distil dynamic probes from the frozen BCM teacher',
    builder: builder(d) as any,
    handler: async (a: any) => {
      for (const f of ['max-steps', 'gradient-accumulation-steps', 'per-device-batch-size', 'latent-tokens', 'attention-maps-every']) requireIntArg(`--${f}`, a[f]);
      if (a['attention-maps'] !== undefined && (typeof a['attention-maps'] !== 'string' || a['attention-maps'] === ''))
        throw new UserError('--attention-maps needs a directory');
      const dev = trainDevicePreflight({
        device: a.device, model: a.model, stage: d.stage, packing: a['enable-data-packing'], perDeviceBatchSize: a['per-device-batch-size'],
        imageMaxPixels: a['image-max-pixels'], optimizerStates: a['optimizer-states'],
        gradientCheckpointing: a['gradient-checkpointing'], dtype: a.dtype,
      });
      const o: TrainOptions = {
        stage: d.stage,
        model: a.model,
        dataPath: a['data-path'],
        imageFolder: a['image-folder'],
        outputDir: a['output-dir'],
        maxSteps: a['max-steps'],
        learningRate: a['learning-rate'],
        weightDecay: a['weight-decay'],
        warmupRatio: a['warmup-ratio'],
        lrScheduler: a['lr-scheduler'],
        gradientAccumulationSteps: a['gradient-accumulation-steps'],
        perDeviceBatchSize: a['per-device-batch-size'],
        maxGradNorm: a['max-grad-norm'],
        seed: a.seed,
        shuffle: a.shuffle,
        packing: a['enable-data-packing'],
        dtype: a.dtype,
        gradientCheckpointing: a['gradient-checkpointing'],
        saveSteps: a['save-steps'],
        saveTotalLimit: a['save-total-limit'],
        resume: a.resume,
        lambdaResampler: a['lambda-resampler'],
        lambdaAttn: a['lambda-attn'],
        latentCount: a['latent-tokens'],
        imageMinPixels: a['image-min-pixels'],
        imageMaxPixels: a['image-max-pixels'],
        strict: a.strict,
        threads: a.threads,
        saveWeightsDtype: a['save-dtype'],
        attentionMapsDir: a['attention-maps'],
        attentionMapsEvery: a['attention-maps-every'],
        device: dev.device,
        optimizerStates: dev.optimizerStates,
        cudaCheckpointing: dev.checkpointing,
      };
      const r = await runTraining(o);
      log().info({ steps: r.steps, output: r.outputDir, interrupted: r.interrupted }, 'training finished');
      process.stdout.write(JSON.stringify({ steps: r.steps, interrupted: r.interrupted, output_dir: r.outputDir, last: r.lastLosses ?? null }) + '\n');
    },
  };
}

export const trainStage1Command = makeTrainCommand(STAGES[1]);
export const trainStage2Command = makeTrainCommand(STAGES[2]);
