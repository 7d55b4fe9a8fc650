// The demo's evaluation and inference: `vreflect eval --benchmarks vstar --steps 0,8` on the held-out split
// (the same runner, engine and scoring the command uses), then one held-out picture through the engine with
// the attention map of every latent step, as `vreflect infer --attention-map` writes it.
import * as fs from 'fs';
import * as path from 'path';

import { runEval } from '../eval/runner';
import { scorePath } from '../eval/score';
import type { ScoredRun } from '../eval/report';
import { vstarPrompt } from '../eval/prompts';
import { Engine } from '../infer/engine';
import { engineGeneratorFactory } from '../infer/eval_generator';
import { log } from '../util/log';
import { startProgress } from '../util/progress';
import { writeAttentionMap } from '../viz/attention_map';
import type { DemoData } from './dataset';

export interface EvalRow {
  /** the evaluated checkpoint, by stage name */
  model: string;
  run: string;
  n: number;
  errors: number;
  upstream: number | null;
  official: number | null;
  /** upstream rule, per V* category */
  byCategory: Record<string, number | null>;
}

/** Generated-token cap: the answer is `<|lvr_start|>`, 8 slots, `<|lvr_end|>` and `<answer> X </answer>`. */
export const DEMO_MAX_NEW_TOKENS = 32;

/** `eval --benchmarks vstar --steps ...` of one checkpoint; results under <outputDir>/vstar_bench/decoding_by_steps/<runName>. */
export async function evaluateHeldout(
  model: string,
  runName: string,
  data: Pick<DemoData, 'heldoutRoot'>,
  outputDir: string,
  steps: number[],
  threads?: number,
): Promise<EvalRow[]> {
  fs.rmSync(outputDir, { recursive: true, force: true });
  await runEval({
    dataRoot: data.heldoutRoot,
    outputDir,
    benchmarks: ['VSTAR'],
    steps,
    baseModel: false,
    runName,
    model: path.resolve(model),
    maxNewTokens: DEMO_MAX_NEW_TOKENS,
    singleResize: false,
    getGenerator: () => engineGeneratorFactory({ model, baseModel: false, device: 'cpu', dtype: 'auto', threads }),
    logger: log(),
    progress: startProgress,
  });
  const runs = scorePath(outputDir).table.VSTAR ?? {};
  return steps.map((s) => {
    const r: ScoredRun | undefined = runs[`step${s}`];
    if (!r) throw new Error(`demo: eval wrote no result for step ${s} under ${outputDir}`);
    const byCategory: Record<string, number | null> = {};
    for (const [k, t] of Object.entries(r.upstream.by_category)) byCategory[k] = t.accuracy;
    return { model: runName, run: `step${s}`, n: r.n, errors: r.errors, upstream: r.accuracy_upstream, official: r.accuracy_official, byCategory };
  });
}

export interface InferResult {
  image: string;
  question: string;
  label: string;
  answer: string;
  latentSteps: number;
  attentionMap?: string;
  /** set when the model did not open a latent block by itself and the demo had to start it */
  forcedLatent: boolean;
}

/** One held-out question with 8 latent steps; the attention map needs the latent block to run. */
export async function inferOne(model: string, data: DemoData, file: string, threads?: number): Promise<InferResult> {
  const item = data.heldout[0];
  const image = path.join(data.heldoutRoot, 'vstar_bench', item.image);
  const engine = await Engine.load(model, { threads });
  const ask = (assistantPrefix: string) =>
    engine.run({ image, prompt: vstarPrompt(item.text), assistantPrefix, latentSteps: 8, maxNewTokens: DEMO_MAX_NEW_TOKENS, captureAttention: true });
  let r = await ask('');
  let forcedLatent = false;
  if (r.attention.length === 0) {
    // an undertrained model may answer without `<|lvr_start|>`; start the block for it (infer --assistant-prefix)
    r = await ask('<|lvr_start|>');
    forcedLatent = true;
  }
  let attentionMap: string | undefined;
  if (r.image && r.attention.length) {
    await writeAttentionMap(file, {
      rgb: r.image.rgb,
      width: r.image.resized.width,
      height: r.image.resized.height,
      gridH: r.image.grid[1] / 2,
      gridW: r.image.grid[2] / 2,
      maps: r.attention,
    });
    attentionMap = file;
  }
  return { image, question: item.text, label: item.label, answer: r.text, latentSteps: r.latent_steps, attentionMap, forcedLatent };
}
