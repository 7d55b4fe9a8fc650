// vreflect plan: the GPU memory plan of an inference or training run, item by item (the same function is the
// pre-flight of `--device cuda` runs), so a user can check a GPU size before booking a node.
import type { CommandModule } from 'yargs';

import { DEFAULT_TRAIN_MAX_PIXELS } from '../../data';
import { smartResize } from '../../image/smart_resize';
import { probeCuda } from '../../plan/cuda_device';
import { DEFAULT_GPU_CAPACITY, GpuPlan, OptimizerStates, planInference, planTraining } from '../../plan/gpu_memory';
import { planModel } from '../../plan/model_source';
import { OPTIMIZER_STATES_OPTION } from '../../plan/preflight';
import { renderPlan } from '../../plan/render';
import { largestMicroBatch } from '../../plan/train_batch_shape';
import { parseBytes } from '../../plan/units';
import { EVAL_MAX_PIXELS, EVAL_MIN_PIXELS } from '../../eval/benchmarks/common';
import { availableMemory } from '../../train/memory_plan';
import { UserError } from '../../util/errors';
import { requireIntArg } from '../int_arg';

interface PlanArgs {
  device: 'cuda';
  model: string;
  stage: 'infer' | '1' | '2';
  'image-size': string;
  'min-pixels'?: number;
  'max-pixels'?: number;
  'prompt-tokens': number;
  'max-new-tokens': number;
  'latent-steps': number;
  'image-max-pixels': number;
  'enable-data-packing': boolean;
  'per-device-batch-size': number;
  'optimizer-states': OptimizerStates | 'auto';
  'gradient-checkpointing': 'auto' | 'on' | 'off';
  'gpu-memory'?: string;
  'host-memory'?: string;
  json: boolean;
}

function parseImageSize(s: string): [number, number] {
  const m = /^(\d+)x(\d+)$/i.exec(s.trim());
  if (!m) throw new UserError(`--image-size: "${s}" is not WxH (e.g. 7680x4320)`);
  return [Number(m[1]), Number(m[2])];
}

/** The GPU the plan is for: --gpu-memory, else the visible GPU's memory, else an 80 GB H100. */
function gpuCapacity(flag: string | undefined): { bytes: number; source: string } {
  if (flag !== undefined) return { bytes: parseBytes(flag, '--gpu-memory'), source: '--gpu-memory' };
  const d = probeCuda({ freeMemory: false }).driver.devices[0];
  if (d) return { bytes: d.memoryBytes, source: `${d.name} (this machine)` };
  return { bytes: DEFAULT_GPU_CAPACITY, source: 'no GPU here: an 80 GB H100 assumed' };
}

export function makePlan(args: PlanArgs): { plan: GpuPlan; gpuSource: string } {
  const m = planModel(args.model);
  const gpu = gpuCapacity(args['gpu-memory']);
  const hostCapacity = args['host-memory'] !== undefined ? parseBytes(args['host-memory'], '--host-memory') : availableMemory();
  requireIntArg('--max-new-tokens', args['max-new-tokens']);
  requireIntArg('--prompt-tokens', args['prompt-tokens']);
  requireIntArg('--latent-steps', args['latent-steps'], 0);
  if (args.stage === 'infer') {
    const [w, h] = parseImageSize(args['image-size']);
    const minPixels = args['min-pixels'] ?? m.minPixels ?? EVAL_MIN_PIXELS;
    const maxPixels = args['max-pixels'] ?? EVAL_MAX_PIXELS;
    let rh: number, rw: number;
    try {
      [rh, rw] = smartResize(h, w, { minPixels, maxPixels });
    } catch (e) {
      throw new UserError(`--image-size: ${(e as Error).message}`);
    }
    const plan = planInference({
      shape: m.shape, imageTokens: (rh * rw) / (28 * 28), promptTokens: args['prompt-tokens'], maxNewTokens: args['max-new-tokens'],
      latentSteps: args['latent-steps'], gpuCapacity: gpu.bytes, hostCapacity, pixelsFlag: '--max-pixels',
    });
    plan.notes.unshift(`image ${w}x${h} resized to ${rw}x${rh} (max_pixels ${maxPixels})`);
    return { plan, gpuSource: gpu.source };
  }
  requireIntArg('--per-device-batch-size', args['per-device-batch-size']);
  requireIntArg('--image-max-pixels', args['image-max-pixels'], 784);
  const mb = largestMicroBatch({ packing: args['enable-data-packing'], perDeviceBatchSize: args['per-device-batch-size'], imageMaxPixels: args['image-max-pixels'] });
  const plan = planTraining({ shape: m.shape, stage: args.stage === '1' ? 1 : 2, ...mb, optimizerStates: args['optimizer-states'],
    checkpointing: args['gradient-checkpointing'], gpuCapacity: gpu.bytes, hostCapacity });
  return { plan, gpuSource: gpu.source };
}

export const planCommand: CommandModule<object, PlanArgs> = {
  command: 'plan',
  describe: 'GPU memory plan of an inference or training run (what --device cuda checks before starting)',
  builder: (y) =>
    y
      .option('device', { choices: ['cuda'] as const, default: 'cuda' as const, describe: 'the device to plan for' })
      .option('model', { type: 'string', default: '7b', describe: 'checkpoint directory (reads config.json), or a preset: 7b, 3b' })
      .option('stage', { type: 'string', choices: ['infer', '1', '2'] as const, default: 'infer' as const, describe: 'infer, or training stage 1 / 2' })
      .option('image-size', { type: 'string', default: '7680x4320', describe: 'infer: the image WxH before smart_resize (default: an HR-Bench 8K image)' })
      .option('min-pixels', { type: 'number', describe: 'infer: processor min_pixels (default: the checkpoint\'s, else 3136)' })
      .option('max-pixels', { type: 'number', describe: `infer: processor max_pixels (default ${EVAL_MAX_PIXELS}, the evaluation cap: 16384 tokens)` })
      .option('prompt-tokens', { type: 'number', default: 512, describe: 'infer: text tokens around the image' })
      .option('max-new-tokens', { type: 'number', default: 512, describe: 'infer: generated tokens the KV cache must hold' })
      .option('latent-steps', { type: 'number', default: 8, describe: 'infer: latent steps (each one more KV-cache row)' })
      .option('image-max-pixels', { type: 'number', default: DEFAULT_TRAIN_MAX_PIXELS, describe: 'training: as train-stage1/2' })
      .option('enable-data-packing', { type: 'boolean', default: true, describe: 'training: as train-stage1/2 (4 x 4096-token packs)' })
      .option('per-device-batch-size', { type: 'number', default: 1, describe: 'training: as train-stage1/2' })
      .option('optimizer-states', OPTIMIZER_STATES_OPTION)
      .option('gradient-checkpointing', {
        choices: ['auto', 'on', 'off'] as const, default: 'auto' as const,
        describe: 'training: as train-stage1/2 (auto: no recomputation when every decoder layer\'s activations fit)',
      })
      .option('gpu-memory', { type: 'string', describe: 'GPU memory to plan for, e.g. 80GB, 141GB, 79.6GiB (default: this machine\'s GPU, else an 80 GB H100)' })
      .option('host-memory', { type: 'string', describe: 'host memory to plan for, e.g. 512GB (default: this machine\'s)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the plan as one JSON object' })
      .example('$0 plan --model 7b --image-size 7680x4320', 'HR-Bench 8K inference on this machine\'s GPU (or an 80 GB H100)')
      .example('$0 plan --model ./V-Reflection-7B --stage 1 --gpu-memory 80GB --host-memory 256GB', 'stage-1 training on an 80 GB GPU'),
  handler: (args) => {
    const { plan, gpuSource } = makePlan(args);
    if (args.json) process.stdout.write(JSON.stringify({ ...plan, gpu: gpuSource }) + '\n');
    else process.stdout.write(`GPU: ${gpuSource}\n` + renderPlan(plan));
    if (!plan.fits) process.exitCode = 1;
  },
};
