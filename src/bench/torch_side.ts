// The PyTorch + transformers side: finds a Python with torch and transformers ($VREFLECT_PYTHON, else python3)
// and runs scripts_bench/torch_infer.py, which prints one JSON line per call.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import { runJsonChild } from './child';
import type { RunTiming } from './ours_worker';

export interface PythonInfo {
  available: boolean;
  python: string;
  torch?: string;
  transformers?: string;
  /** Why it is not available (one line). */
  reason?: string;
}

/** Checks that `python` imports torch and transformers (a few seconds: importing torch is slow). */
export function findTorchPython(explicit?: string): PythonInfo {
  const python = explicit || process.env.VREFLECT_PYTHON || 'python3';
  const probe = 'import json, torch, transformers; print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__}))';
  const r = spawnSync(python, ['-c', probe], { encoding: 'utf8', timeout: 120_000 });
  if (r.error) return { available: false, python, reason: `cannot run ${python}: ${r.error.message}` };
  if (r.status !== 0) {
    const last = (r.stderr || '').trim().split('\n').pop() || `exit code ${r.status}`;
    return { available: false, python, reason: `${python}: ${last}` };
  }
  try {
    const v = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
    return { available: true, python, torch: v.torch, transformers: v.transformers };
  } catch {
    return { available: false, python, reason: `${python}: unexpected answer to the version probe` };
  }
}

/** scripts_bench/<name> of this package (searched upwards from this module: src/ or dist/src/), if it is there. */
export function findBenchScript(name: string): string | undefined {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const f = path.join(dir, 'scripts_bench', name);
    if (fs.existsSync(f)) return f;
    dir = path.dirname(dir);
  }
  return undefined;
}

/** scripts_bench/<name> of this package; throws when it is missing. */
export function benchScript(name: string): string {
  const f = findBenchScript(name);
  if (!f) throw new Error(`bench: scripts_bench/${name} not found next to the package`);
  return f;
}

export const torchScript = (): string => benchScript('torch_infer.py');

export interface TorchInferRequest {
  model: string;
  image: string;
  prompt: string;
  dtype: 'bf16' | 'fp32';
  threads: number;
  newTokens: number;
  repeats: number;
  warmup: number;
  /** where torch runs (bench infer --device cuda: the GPU when torch has CUDA) */
  device?: 'cpu' | 'cuda';
}

export interface TorchInferResult {
  ok: true;
  torch: string;
  transformers: string;
  dtype: string;
  device?: string;
  threads: number;
  attn: string;
  prompt_tokens: number;
  image_grid_thw: number[];
  load_s: number;
  runs: RunTiming[];
  rss_after_load_bytes: number;
  peak_rss_bytes: number;
  cpu_s: number;
}

export interface TorchGemmResult {
  ok: true;
  torch: string;
  threads: number;
  results: { dtype: string; m: number; n: number; k: number; best_ms: number; gflops: number }[];
  cpu_s: number;
}

export async function runTorchInfer(py: PythonInfo, req: TorchInferRequest, onLine?: (l: string) => void): Promise<TorchInferResult> {
  const args = [
    torchScript(), 'infer', '--model', req.model, '--image', req.image, '--prompt', req.prompt, '--dtype', req.dtype,
    '--threads', String(req.threads), '--new-tokens', String(req.newTokens), '--repeats', String(req.repeats),
    '--warmup', String(req.warmup), '--device', req.device ?? 'cpu',
  ];
  const r = await runJsonChild(py.python, args, { label: `torch ${req.dtype}`, timeoutMs: 3_600_000, onStderrLine: onLine });
  return r as TorchInferResult;
}

export async function runTorchGemm(py: PythonInfo, threads: number, onLine?: (l: string) => void): Promise<TorchGemmResult> {
  const r = await runJsonChild(py.python, [torchScript(), 'gemm', '--threads', String(threads)], {
    label: 'torch gemm',
    timeoutMs: 600_000,
    onStderrLine: onLine,
  });
  return r as TorchGemmResult;
}
