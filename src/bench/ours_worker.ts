// Our engine's side of the benchmark, run in a child process (one per dtype, so VmHWM is that run's own peak):
// Engine.load, warm-up, then repeats of one image + question with plain decoding of a fixed token count.
// As a script: `node ours_worker.js '<OursRequest JSON>'` prints one JSON line (OursResult) on stdout.
import * as path from 'path';

import { Engine } from '../infer/engine';
import { loadAddon } from '../native/addon';
import { oneLine } from '../util/errors';
import { setLogLevel } from '../util/log';
import { rssBytes } from './machine';

export interface OursRequest {
  model: string;
  image: string;
  prompt: string;
  dtype: 'bf16' | 'fp32';
  threads: number;
  newTokens: number; // decode forwards per run (the first token comes from prefill)
  repeats: number;
  warmup: number;
  /** resolved --device (default cpu) */
  device?: 'cpu' | 'cuda';
}

export interface RunTiming {
  prefill_ms: number;
  vision_ms: number;
  decode_ms_per_token: number;
  generated: number;
}

export interface OursResult {
  ok: true;
  dtype: string;
  /** what ran the model: "cpu", the GPU's name, "CUDA emulator (CPU)" */
  device: string;
  threads: number;
  gemm: { f32: string; bf16: string };
  load_ms: number;
  prompt_tokens: number;
  image_grid_thw?: number[];
  runs: RunTiming[];
  stop_reasons: string[];
  rss_after_load_bytes: number;
  peak_rss_bytes: number;
  cpu_s: number; // this process's CPU time (user + system), to tell its load from other work's
}

export async function measureOurs(req: OursRequest, progress: (msg: string) => void = () => {}): Promise<OursResult> {
  const engine = await Engine.load(req.model, { dtype: req.dtype, threads: req.threads, device: req.device ?? 'cpu' });
  const rssAfterLoad = rssBytes().current;
  const info = loadAddon().info();
  const run = (maxNewTokens: number) =>
    engine.run({ image: req.image, prompt: req.prompt, latentSteps: 0, maxNewTokens });
  for (let i = 0; i < req.warmup; i++) {
    progress(`ours ${req.dtype}: warm-up ${i + 1}/${req.warmup}`);
    await run(2);
  }
  const runs: RunTiming[] = [];
  const stops: string[] = [];
  let promptTokens = 0;
  let grid: number[] | undefined;
  for (let i = 0; i < req.repeats; i++) {
    const r = await run(req.newTokens + 1);
    promptTokens = r.prompt_tokens;
    grid = r.image ? [...r.image.grid] : undefined;
    runs.push({
      prefill_ms: r.timings.prefill_ms,
      vision_ms: r.timings.vision_ms,
      decode_ms_per_token: r.timings.decode_ms_per_token,
      generated: r.token_ids.length,
    });
    stops.push(r.stopReason);
    progress(
      `ours ${req.dtype}: repeat ${i + 1}/${req.repeats}: prefill ${r.timings.prefill_ms.toFixed(0)} ms, ` +
        `decode ${r.timings.decode_ms_per_token.toFixed(1)} ms/token, ${r.token_ids.length} tokens`,
    );
  }
  return {
    ok: true,
    dtype: engine.dtype,
    device: engine.deviceName,
    threads: info.cpu.threads,
    gemm: { f32: info.cpu.gemm_f32, bf16: info.cpu.gemm_bf16 },
    load_ms: engine.loadMs,
    prompt_tokens: promptTokens,
    image_grid_thw: grid,
    runs,
    stop_reasons: stops,
    rss_after_load_bytes: rssAfterLoad,
    peak_rss_bytes: rssBytes().peak,
    cpu_s: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
  };
}

/** The compiled worker script next to this module (the bench spawns it with `node`). */
export function oursWorkerScript(): string {
  return path.join(__dirname, 'ours_worker.js');
}

if (require.main === module) {
  setLogLevel('warn');
  let req: OursRequest;
  try {
    req = JSON.parse(process.argv[2] ?? '');
  } catch {
    process.stdout.write(JSON.stringify({ ok: false, error: 'ours_worker: argument 1 must be the request as JSON' }) + '\n');
    process.exit(2);
  }
  measureOurs(req, (m) => process.stderr.write(m + '\n'))
    .then((r) => process.stdout.write(JSON.stringify(r) + '\n'))
    .catch((e) => {
      process.stdout.write(JSON.stringify({ ok: false, error: oneLine(e) }) + '\n');
      process.exitCode = 1;
    });
}
