// The demo's stdout: what ran, the losses of each training run, held-out accuracies for 0 vs 8 latent steps,
// where the checkpoints and the attention map are, and the caveat that this shows the pipeline working, not
// V-Reflection's results.
import type { EvalRow, InferResult } from './evaluate';
import type { StageResult } from './stages';

export interface DemoSummary {
  outputDir: string;
  seed: number;
  quick: boolean;
  parameters: number;
  trainRecords: number;
  heldout: { total: number; byCategory: Record<string, number>; chance: number };
  stages: StageResult[];
  eval: EvalRow[];
  infer: InferResult;
  seconds: { prepare: number; eval: number; infer: number; total: number };
}

export const CAVEAT =
  'This proves the pipeline (data -> warm-up -> stage 1 -> stage 2 -> eval -> infer), not a paper result: ' +
  'a 1 M-parameter model trained from random weights for two minutes on toy pictures says nothing about V-Reflection\'s accuracy.';

const COMPONENT_NAMES: Record<string, string> = { loss_ce: 'ce', loss_resampler: 'align', loss_mse: 'mse', loss_kl: 'kl' };

function fmt(x: number | null | undefined, digits = 4): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits);
}

function secs(x: number): string {
  return `${x < 1 ? x.toFixed(2) : x.toFixed(1)} s`;
}

function pct(x: number | null | undefined): string {
  return x === null || x === undefined ? '—' : `${x.toFixed(1)}%`;
}

/** Which components a stage's total is made of (stage 1 logs the alignment loss even with weight 0). */
function components(s: StageResult, which: 'first' | 'last'): string {
  const v = s[which];
  const keys = s.plan.stage === 2 ? ['loss_ce', 'loss_mse', 'loss_kl'] : ['loss_ce', 'loss_resampler'];
  return keys.map((k) => `${COMPONENT_NAMES[k]} ${fmt(v[k])}`).join(', ');
}

function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd();
  return [line(header), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
}

export function formatReport(s: DemoSummary): string {
  const out: string[] = [];
  out.push(`vreflect demo${s.quick ? ' (--quick)' : ''}: seed ${s.seed}, output ${s.outputDir}`);
  out.push(
    `model: tiny Qwen2.5-VL architecture, ${(s.parameters / 1e6).toFixed(2)} M parameters (random init); ` +
      `data: ${s.trainRecords} synthetic training records, ${s.heldout.total} held-out questions in V* Bench format`,
  );
  out.push('');
  out.push('Training (loss = total; first step, and mean of the last tenth of the steps)');
  out.push(
    table(
      ['stage', 'steps', 'lr', 'lambda', 'first loss', 'last loss', 'last components', 'time'],
      s.stages.map((st) => [
        st.plan.name,
        String(st.plan.steps),
        st.plan.learningRate.toExponential(0),
        String(st.plan.lambdaResampler),
        fmt(st.first.loss),
        fmt(st.last.loss),
        components(st, 'last'),
        secs(st.seconds),
      ]),
    ),
  );
  out.push('');
  const cats = Object.keys(s.heldout.byCategory).sort();
  out.push(
    `Held-out eval (${cats.map((c) => `${s.heldout.byCategory[c]} ${c}`).join(', ')}; ` +
      `chance ${s.heldout.chance.toFixed(1)}%)`,
  );
  out.push(
    table(
      ['checkpoint', 'latent steps', 'upstream acc', 'official acc', ...cats, 'errors'],
      s.eval.map((e) => [e.model, e.run.replace(/^step/, ''), pct(e.upstream), pct(e.official), ...cats.map((c) => pct(e.byCategory[c])), String(e.errors)]),
    ),
  );
  out.push('upstream: upstream\'s answer extraction and micro accuracy; official: strict extraction, V*\'s overall accuracy');
  out.push('');
  out.push('Checkpoints');
  for (const st of s.stages) out.push(`  ${st.plan.name.padEnd(12)} ${st.outputDir}  (resume state: ${st.checkpoint})`);
  out.push('');
  const inf = s.infer;
  out.push(`Inference on ${inf.image} (gold answer ${inf.label}${inf.forcedLatent ? '; latent block started by the demo' : ''}):`);
  out.push(`  ${JSON.stringify(inf.answer)}`);
  out.push(`  attention map: ${inf.attentionMap ?? 'not written (no latent step ran)'}`);
  out.push('');
  out.push(
    `Time: ${secs(s.seconds.total)} (data and model ${secs(s.seconds.prepare)}, training ` +
      `${secs(s.stages.reduce((a, st) => a + st.seconds, 0))}, eval ${secs(s.seconds.eval)}, infer ${secs(s.seconds.infer)})`,
  );
  out.push('');
  out.push(CAVEAT);
  return out.join('\n') + '\n';
}
