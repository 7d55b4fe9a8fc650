// What people read: the summary object at the head of each result file, and summary.md / summary.json
// (every benchmark x run, upstream and official side by side).
import * as fs from 'fs';
import * as path from 'path';

import { RULE_DOCS, RULES } from './extract';
import { OFFICIAL_RULE_DOCS } from './official';
import { RunScore, ScoreOptions, scoreRun } from './metrics';
import { writeJsonAtomic } from './results';
import type { BenchmarkKey, StoredItem } from './types';
import { BENCHMARK_KEYS } from './types';

export interface RunMeta {
  benchmark: BenchmarkKey;
  run: string;
  run_name: string;
  model: string;
  latent_steps: number | null;
  /** items this run is meant to hold (after --limit, before --shard) */
  expected_total: number;
  shard?: string;
  /** items of this shard's slice, in shard files */
  shard_expected?: number;
  config: Record<string, unknown>;
}

/**
 * The summary object that heads a result file. Upstream's own keys (overall_accuracy, accuracy_by_category,
 * accuracy_by_perception_reasoning) are filled the upstream way so upstream's tools read our files.
 */
export function resultFileSummary(meta: RunMeta, items: StoredItem[], complete: boolean, score: ScoreOptions = {}): Record<string, unknown> {
  const s = scoreRun(meta.benchmark, items, score);
  const upstreamCats: Record<string, unknown> = {};
  for (const [k, t] of Object.entries(s.upstream.by_category)) upstreamCats[k] = { total: t.total, correct: t.correct, accuracy: t.accuracy };
  return {
    summary: true,
    ...meta,
    items: items.length,
    complete,
    n: s.n,
    errors: s.errors,
    accuracy_upstream: s.accuracy_upstream,
    accuracy_official: s.accuracy_official,
    overall_accuracy: s.accuracy_upstream,
    overall_correct: s.upstream.correct,
    overall_total: s.upstream.total,
    ...(s.upstream.by_perception_reasoning ? { accuracy_by_perception_reasoning: s.upstream.by_perception_reasoning } : { accuracy_by_category: upstreamCats }),
    official: s.official,
    accuracy_by_rule: s.accuracy_by_rule,
    extraction: RULE_DOCS,
    note: 'eval score recomputes everything from the items; this object is informational',
  };
}

export interface ScoredRun extends RunScore {
  file: string;
  expected_total: number;
}

export type ScoreTable = Partial<Record<BenchmarkKey, Record<string, ScoredRun>>>;

const fmt = (x: number | null | undefined) => (x === null || x === undefined ? '—' : x.toFixed(2));

function runOrder(a: string, b: string): number {
  const na = /^step(\d+)$/.exec(a);
  const nb = /^step(\d+)$/.exec(b);
  if (na && nb) return Number(na[1]) - Number(nb[1]);
  if (na) return 1;
  if (nb) return -1;
  return a.localeCompare(b);
}

/** Benchmarks in the canonical order, runs baseline first then by step count. */
export function tableRows(table: ScoreTable): { bench: BenchmarkKey; run: string; score: ScoredRun }[] {
  const rows: { bench: BenchmarkKey; run: string; score: ScoredRun }[] = [];
  for (const bench of BENCHMARK_KEYS) {
    const runs = table[bench];
    if (!runs) continue;
    for (const run of Object.keys(runs).sort(runOrder)) rows.push({ bench, run, score: runs[run] });
  }
  return rows;
}

/** Items the official rule left to an LLM judge, and how they were settled; '' when none. */
function judgeDetail(s: ScoredRun): string {
  const j = s.official.judge;
  if (!j || j.undecided === 0) return '';
  const how = [
    j.recorded ? `${j.recorded} by the recorded official choice` : '',
    j.stand_in ? `${j.stand_in} by the strict rule standing in` : '',
    j.failed ? `${j.failed} scored wrong (--judge none)` : '',
  ].filter((x) => x);
  return `; ${j.undecided} left to the judge: ${how.join(', ')}`;
}

function officialDetail(bench: BenchmarkKey, s: ScoredRun): string {
  const check = s.official.recorded_check;
  const agree = check ? `; rule vs recorded: ${check.checked - check.differ}/${check.checked} agree` : '';
  return officialMetricDetail(bench, s) + judgeDetail(s) + agree;
}

function officialMetricDetail(bench: BenchmarkKey, s: ScoredRun): string {
  const o = s.official;
  if (o.pairs) return `pairs ${o.pairs.correct}/${o.pairs.complete}${o.pairs.incomplete ? `, ${o.pairs.incomplete} incomplete` : ''}`;
  if (bench === 'HRBench4K' || bench === 'HRBench8K') return o.cycles ? `FSP ${fmt(o.fsp)}, FCP ${fmt(o.fcp)}` : 'no cycle_category';
  if (o.by_task) return Object.entries(o.by_task).map(([k, t]) => `${k} ${fmt(t.accuracy)}`).join(', ');
  if (o.by_category && bench !== 'BLINK') return Object.entries(o.by_category).map(([k, t]) => `${k} ${fmt(t.accuracy)}`).join(', ');
  if (o.by_category) return `${Object.keys(o.by_category).length} subtasks`;
  return '';
}

/** One benchmark's official accuracies per key (rows) and run (columns), with the overall figure last. */
function breakdown(runsOf: Record<string, ScoredRun> | undefined, title: string, keyName: string, tallies: (s: ScoredRun) => Record<string, { accuracy: number | null }> | undefined, overall: string): string[] {
  if (!runsOf) return [];
  const runs = Object.keys(runsOf).sort(runOrder);
  const keys = [...new Set(runs.flatMap((r) => Object.keys(tallies(runsOf[r]) ?? {})))].sort();
  if (keys.length === 0) return [];
  const lines = ['', title, '', `| ${keyName} | ${runs.join(' | ')} |`, `|---|${runs.map(() => '---:').join('|')}|`];
  for (const k of keys) lines.push(`| ${k} | ${runs.map((r) => fmt(tallies(runsOf[r])?.[k]?.accuracy)).join(' | ')} |`);
  lines.push(`| ${overall} | ${runs.map((r) => fmt(runsOf[r].accuracy_official)).join(' | ')} |`);
  return lines;
}

export function renderMarkdown(table: ScoreTable, title = 'vreflect eval summary'): string {
  const lines = [`# ${title}`, '', 'Accuracies in percent. Error items (unreadable image, malformed row) are counted apart and left out of every denominator.', ''];
  lines.push('| Benchmark | Run | n | errors | upstream | official | official metric | official detail | strict (micro) | upstream shell rule |');
  lines.push('|---|---|---:|---:|---:|---:|---|---|---:|---:|');
  for (const { bench, run, score } of tableRows(table)) {
    const nCell = score.n + score.errors < score.expected_total ? `${score.n} (of ${score.expected_total})` : `${score.n}`;
    lines.push(
      `| ${bench} | ${run} | ${nCell} | ${score.errors} | ${fmt(score.accuracy_upstream)} | ${fmt(score.accuracy_official)} | ${score.official.metric} | ${officialDetail(bench, score)} | ${fmt(score.accuracy_by_rule.strict)} | ${fmt(score.accuracy_by_rule.upstream_shell)} |`,
    );
  }
  lines.push('', '## Columns', '');
  lines.push('- **upstream**: upstream extraction (`accuracy_reward`) and upstream metric (micro accuracy; MME-RealWorld-Lite only over Question_id prefixes perception/reasoning, as upstream\'s summary does).');
  lines.push('- **official**: the benchmark\'s official extraction (below) and its official metric (BLINK macro over subtasks, MMVP pairs, HR-Bench mean over cycle groups, MME-RealWorld-Lite micro over all items, V* micro). Items the official pipeline sends to an LLM judge take a recorded official choice where the file has one, else the --judge policy (strict: the strict rule stands in; none: wrong); the detail column counts them.');
  lines.push(...breakdown(table.BLINK, '## BLINK by subtask (official)', 'Subtask', (s) => s.official.by_category, '**macro mean**'));
  lines.push(...breakdown(table['MME-RealWorld-Lite'], '## MME-RealWorld-Lite by Task / Subtask (official)', 'Task/Subtask', (s) => s.official.by_task_subtask, '**overall (micro)**'));
  lines.push('', '## Official extraction', '');
  const rules = new Map<string, string>(); // one line per benchmark and rule, in table order
  for (const { bench, score } of tableRows(table)) {
    const name = score.official.extraction;
    rules.set(`${bench}: \`${name}\``, OFFICIAL_RULE_DOCS[name] ?? 'unknown rule');
  }
  for (const [head, doc] of rules) lines.push(`- ${head}: ${doc}`);
  lines.push('', '## Extraction rules', '');
  for (const rule of RULES) lines.push(`- \`${rule}\`: ${RULE_DOCS[rule]}`);
  const warned = tableRows(table).filter((r) => r.score.warnings.length);
  if (warned.length) {
    lines.push('', '## Warnings', '');
    for (const { bench, run, score } of warned) for (const w of score.warnings) lines.push(`- ${bench} ${run}: ${w}`);
  }
  lines.push('', '## Files', '');
  for (const { bench, run, score } of tableRows(table)) lines.push(`- ${bench} ${run}: \`${score.file}\``);
  return lines.join('\n') + '\n';
}

/** The `eval score --json` shape: { Benchmark: { run: { n, accuracy_upstream, accuracy_official, errors, ... } } }. */
export function toJson(table: ScoreTable): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const { bench, run, score } of tableRows(table)) {
    const { n, accuracy_upstream, accuracy_official, errors, ...rest } = score;
    (out[bench] ??= {})[run] = { n, accuracy_upstream, accuracy_official, errors, ...rest };
  }
  return out;
}

export function writeSummaries(outDir: string, table: ScoreTable): { md: string; json: string } {
  const md = path.join(outDir, 'summary.md');
  const json = path.join(outDir, 'summary.json');
  fs.mkdirSync(outDir, { recursive: true });
  writeJsonAtomic(json, toJson(table));
  fs.writeFileSync(md, renderMarkdown(table));
  return { md, json };
}
