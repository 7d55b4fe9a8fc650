// The PyTorch side of `vreflect bench train`: runs scripts_bench/torch_train.py (one process per measurement) and
// reads its JSON line. Finding a Python with torch + transformers is torch_side.ts's job.
import { runJsonChild } from './child';
import { benchScript, PythonInfo } from './torch_side';
import type { StepTiming, TrainRunSettings } from './train_worker';

export interface TorchTrainRequest extends TrainRunSettings {
  batchFile: string;
  /** transformers' gradient checkpointing of the decoder layers */
  checkpointing: boolean;
  /** where torch runs (bench train --device cuda: the GPU; default cpu) */
  device?: 'cpu' | 'cuda';
}

export interface TorchTrainResult {
  ok: true;
  /** "cpu" or the GPU's name */
  device?: string;
  /** --device cuda: torch.cuda.max_memory_allocated() */
  peak_device_bytes?: number;
  torch: string;
  transformers: string;
  threads: number;
  checkpointing: boolean;
  grad_accum: number;
  adamw: string;
  attn: string;
  /** tokens and CE targets of ONE micro-batch */
  tokens: number;
  targets: number;
  trainable_params: number;
  load_s: number;
  steps: (StepTiming & { vision_ms: number })[];
  rss_after_load_bytes: number;
  peak_rss_bytes: number;
  cpu_s: number;
}

export const torchTrainScript = (): string => benchScript('torch_train.py');

export function torchTrainArgs(req: TorchTrainRequest): string[] {
  return [
    torchTrainScript(), '--model', req.model, '--batch', req.batchFile, '--threads', String(req.threads),
    '--steps', String(req.steps), '--warmup', String(req.warmup), '--lr', String(req.lr), '--max-grad-norm', String(req.maxGradNorm),
    '--grad-accum', String(req.gradientAccumulationSteps),
    ...(req.checkpointing ? ['--checkpointing'] : []),
    ...(req.device === 'cuda' ? ['--device', 'cuda'] : []),
  ];
}

export async function runTorchTrain(py: PythonInfo, req: TorchTrainRequest, onLine?: (l: string) => void): Promise<TorchTrainResult> {
  const label = `torch bf16${req.checkpointing ? ' ckpt' : ''}`;
  const r = await runJsonChild(py.python, torchTrainArgs(req), { label, timeoutMs: 3_600_000, onStderrLine: onLine });
  return r as TorchTrainResult;
}
