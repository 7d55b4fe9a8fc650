// `vreflect demo`: the whole V-Reflection pipeline on a fresh machine, on CPU, in a few minutes. It makes a tiny
// random Qwen2.5-VL-architecture checkpoint and a synthetic grounded-VQA data set, then runs the library
// functions behind the CLI commands in the order a real run uses them:
//   warm-up   train-stage1 with lambda 0 (cross-entropy only) on the records with the dummy box
//   stage 1   train-stage1 (BCM: CE + alignment, lambda 0.5 as released) on the gold boxes
//   stage 2   train-stage2 (DAC distillation, lambda 1.0, lambda-attn 1.0) from stage 1
//   eval      eval --benchmarks vstar --steps 0,8 on the held-out split (V* Bench format), stage 1 and 2
//   infer     infer --latent-steps 8 --attention-map on one held-out picture
// Progress goes to stderr; the report (src/demo/report.ts) to stdout.
import * as fs from 'fs';
import * as path from 'path';

import { UserError } from '../util/errors';
import { trainBpe } from './bpe';
import { DemoData, demoCorpus, writeDemoData } from './dataset';
import { EvalRow, evaluateHeldout, inferOne } from './evaluate';
import { DemoSummary } from './report';
import { StagePlan, StageResult, runStage } from './stages';
import { DEMO_SHAPE, writeTinyModel } from './tiny_model';

export interface DemoOptions {
  outputDir: string;
  seed: number;
  /** a few steps of everything: checks the pipeline in seconds (tests, CI) */
  quick: boolean;
  threads?: number;
  /** progress lines (stderr by default) */
  say?: (line: string) => void;
}

export interface DemoPlan {
  trainItems: number;
  heldoutItems: number;
  stages: [StagePlan, StagePlan, StagePlan];
  evalSteps: number[];
}

/**
 * Sizes measured on a 2-core CPU (about 9 ms per training sample, a step being one pack of 4). The warm-up
 * teaches a random model to read colour and left/right off the picture and takes most of the budget: with
 * seeds 1-3 its training cross-entropy falls to <= 0.003 per token by step 2000, while left/right is often still
 * at chance after 1000. Learning rates are far above the released 1e-5 / 1e-6, which suit a 7B model that
 * already answers; this one starts from noise.
 */
export function demoPlan(quick: boolean): DemoPlan {
  if (quick)
    return {
      trainItems: 32,
      heldoutItems: 8,
      stages: [
        { name: 'warm-up', stage: 1, steps: 12, learningRate: 2e-3, lambdaResampler: 0 },
        { name: 'stage 1', stage: 1, steps: 6, learningRate: 5e-4, lambdaResampler: 0.5 },
        { name: 'stage 2', stage: 2, steps: 6, learningRate: 2e-4, lambdaResampler: 1.0 },
      ],
      evalSteps: [0, 8],
    };
  return {
    trainItems: 4000,
    heldoutItems: 60,
    stages: [
      { name: 'warm-up', stage: 1, steps: 2000, learningRate: 2e-3, lambdaResampler: 0 },
      { name: 'stage 1', stage: 1, steps: 300, learningRate: 5e-4, lambdaResampler: 0.5 },
      { name: 'stage 2', stage: 2, steps: 300, learningRate: 2e-4, lambdaResampler: 1.0 },
    ],
    evalSteps: [0, 8],
  };
}

/** Marks a folder as the demo's, so a re-run may replace it and nothing else gets overwritten. */
const MARKER = '.vreflect-demo';

export function prepareOutputDir(dir: string): void {
  if (fs.existsSync(dir)) {
    if (!fs.statSync(dir).isDirectory()) throw new UserError(`--output-dir ${dir} is a file`);
    const entries = fs.readdirSync(dir);
    if (entries.length && !entries.includes(MARKER))
      throw new UserError(`--output-dir ${dir} is not empty and was not written by vreflect demo; pick another folder`);
    for (const e of entries) if (e !== MARKER) fs.rmSync(path.join(dir, e), { recursive: true, force: true });
  }
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, MARKER), 'written by `vreflect demo`; a re-run replaces this folder\n');
}

function chance(data: DemoData): { byCategory: Record<string, number>; chance: number } {
  const byCategory: Record<string, number> = {};
  let sum = 0;
  for (const h of data.heldout) {
    byCategory[h.category] = (byCategory[h.category] ?? 0) + 1;
    sum += 100 / h.options;
  }
  return { byCategory, chance: sum / Math.max(1, data.heldout.length) };
}

export async function runDemo(o: DemoOptions): Promise<DemoSummary> {
  const say = o.say ?? ((line: string) => process.stderr.write(`[demo] ${line}\n`));
  const t0 = Date.now();
  const out = path.resolve(o.outputDir);
  const plan = demoPlan(o.quick);
  prepareOutputDir(out);

  say(`building a tiny random Qwen2.5-VL checkpoint and ${plan.trainItems} + ${plan.heldoutItems} synthetic questions in ${out}`);
  const bpe = trainBpe(demoCorpus());
  const base = writeTinyModel(path.join(out, 'base-model'), bpe, DEMO_SHAPE, o.seed);
  const data = await writeDemoData({ root: path.join(out, 'data'), trainItems: plan.trainItems, heldoutItems: plan.heldoutItems, seed: o.seed });
  const prepare = (Date.now() - t0) / 1000;

  const stages: StageResult[] = [];
  let model = base.dir;
  const folders = ['warmup', 'stage1', 'stage2'];
  for (const [i, st] of plan.stages.entries()) {
    const dataPath = i === 0 ? data.warmupMeta : data.meta;
    say(`${st.name}: ${st.steps} steps of train-stage${st.stage} (lr ${st.learningRate}, lambda ${st.lambdaResampler}) from ${model}`);
    const r = await runStage(st, model, path.join(out, folders[i]), { dataPath, seed: o.seed, threads: o.threads });
    if (r.interrupted) throw new UserError(`interrupted during the ${st.name}; its checkpoint is in ${r.checkpoint}`);
    say(`${st.name}: loss ${r.first.loss?.toFixed(4)} -> ${r.last.loss?.toFixed(4)} in ${r.seconds.toFixed(1)} s`);
    stages.push(r);
    model = r.outputDir;
  }

  // Both trained checkpoints: stage 2 trains the LLM through the <|lvr|> hidden states without the stage-1
  // alignment term (method.md §9.3), so it can undo the latent rollout that 8 steps rely on; showing stage 1
  // next to it makes that visible instead of hiding it.
  const te = Date.now();
  say(`eval: ${data.heldout.length} held-out questions (V* Bench format), latent steps ${plan.evalSteps.join(' and ')}, stage-1 and stage-2 checkpoints`);
  const evalRows: EvalRow[] = [];
  for (const st of stages.slice(1)) {
    const name = path.basename(st.outputDir);
    evalRows.push(...(await evaluateHeldout(st.outputDir, name, data, path.join(out, 'results', name), plan.evalSteps, o.threads)));
  }
  const evalSeconds = (Date.now() - te) / 1000;

  const ti = Date.now();
  say('infer: one held-out picture with 8 latent steps and the attention map');
  const infer = await inferOne(model, data, path.join(out, 'attention_map.png'), o.threads);
  const inferSeconds = (Date.now() - ti) / 1000;

  return {
    outputDir: out,
    seed: o.seed,
    quick: o.quick,
    parameters: base.parameters,
    trainRecords: data.trainRecords,
    heldout: { total: data.heldout.length, ...chance(data) },
    stages,
    eval: evalRows,
    infer,
    seconds: { prepare, eval: evalSeconds, infer: inferSeconds, total: (Date.now() - t0) / 1000 },
  };
}
