// `vreflect bench kernels`: the three sides (ours on the CPU, ours on the GPU, PyTorch on the GPU) merged into
// one table per (kernel, shape, mask), with TFLOP/s side by side and the GPU / PyTorch ratio.
import { isElementwise, KernelBench, KERNELS, KernelName, KernelResult, normaliseShape, rowKey } from './kernels_schema';

export type Side = 'cpu' | 'gpu' | 'torch';

export interface SideRun {
  side: Side;
  /** the side's report, or why it did not run */
  bench?: KernelBench;
  skipped?: string;
}

export interface MergedRow {
  kernel: KernelName;
  shape: Record<string, number>;
  causal?: boolean;
  /** best result per side (highest TFLOP/s over that side's implementations; GB/s for the memory-bound kernels) */
  cpu?: KernelResult;
  gpu?: KernelResult;
  torch?: KernelResult;
  /** gpu.tflops / torch.tflops (gbs / gbs for the memory-bound kernels) */
  ratio?: number;
}

export interface KernelsReport {
  date: string;
  sides: { side: Side; device?: KernelBench['device']; skipped?: string; results: number; failed: KernelBench['failed'] }[];
  rows: MergedRow[];
}

export function mergeKernelRuns(runs: SideRun[], date = new Date().toISOString()): KernelsReport {
  const rows = new Map<string, MergedRow>();
  for (const run of runs) {
    for (const r of run.bench?.results ?? []) {
      const key = rowKey(r);
      let row = rows.get(key);
      if (!row) {
        row = { kernel: r.kernel, shape: normaliseShape(r.kernel, r.shape), causal: r.causal };
        rows.set(key, row);
      }
      const cur = row[run.side];
      if (!cur || figure(r) > figure(cur)) row[run.side] = r;
    }
  }
  for (const row of rows.values()) if (row.gpu && row.torch && figure(row.torch) > 0) row.ratio = figure(row.gpu) / figure(row.torch);
  const sorted = [...rows.values()].sort(
    (a, b) =>
      KERNELS.indexOf(a.kernel) - KERNELS.indexOf(b.kernel) ||
      Number(a.causal ?? false) - Number(b.causal ?? false) ||
      shapeSize(a.shape) - shapeSize(b.shape),
  );
  return {
    date,
    sides: runs.map((r) => ({ side: r.side, device: r.bench?.device, skipped: r.skipped, results: r.bench?.results.length ?? 0, failed: r.bench?.failed ?? [] })),
    rows: sorted,
  };
}

/** What a row compares: TFLOP/s, or GB/s for a memory-bound kernel (its tflops is 0). */
function figure(r: KernelResult): number {
  return isElementwise(r.kernel) ? (r.gbs ?? 0) : r.tflops;
}

function shapeSize(s: Record<string, number>): number {
  return (s.seq ?? 0) * 1e6 + (s.keys ?? 0) * 1e3 + (s.m ?? 0) + (s.n ?? 0) * 1e-4 + (s.k ?? 0) * 1e-8;
}

const fmtShape = (s: Record<string, number>) => Object.entries(s).map(([k, v]) => `${k}=${v}`).join(' ');
const tf = (r?: KernelResult) => {
  if (!r) return '-';
  if (isElementwise(r.kernel)) return `${(r.gbs ?? 0).toFixed(0)} GB/s (${r.impl})`;
  return `${r.tflops >= 10 ? r.tflops.toFixed(0) : r.tflops.toPrecision(3)} (${implWithTile(r)}${r.gbs !== undefined ? `, ${r.gbs.toFixed(0)} GB/s` : ''})`;
};
// The implementation and the attention tile variant that ran, where the producer names one the impl does not
// ("vreflect-tc" + tile "64x64w4": "vreflect-tc/64x64w4"; "wgmma:" prefixes dropped).
function implWithTile(r: KernelResult): string {
  const t = r.tile?.replace(/^wgmma:/, '');
  return t && !r.impl.endsWith(`/${t}`) ? `${r.impl}/${t}` : r.impl;
}
const deviceText = (d: KernelBench['device']) =>
  `${d.name}${d.cc ? ` (cc ${d.cc})` : ''}${d.attention_tiles ? ` [attention tiles fwd ${d.attention_tiles.fwd}, bwd ${d.attention_tiles.bwd}${d.smem_optin_bytes ? `; ${Math.round(d.smem_optin_bytes / 1024)} KiB shared memory per block` : ''}]` : ''}`;

export function renderKernelsText(rep: KernelsReport): string {
  const lines = [`bench kernels, ${rep.date}`];
  for (const s of rep.sides)
    lines.push(`  ${s.side.padEnd(5)} ${s.device ? `${deviceText(s.device)}: ${s.results} results${s.failed.length ? `, ${s.failed.length} failed (first: ${s.failed[0].kernel}: ${s.failed[0].error})` : ''}` : `skipped: ${s.skipped}`}`);
  const table = rep.rows.map((r) => [
    r.kernel + (r.causal === undefined ? '' : r.causal ? ' causal' : ''),
    fmtShape(r.shape),
    tf(r.cpu),
    tf(r.gpu),
    tf(r.torch),
    r.ratio !== undefined ? r.ratio.toFixed(2) : '-',
  ]);
  const head = ['kernel', 'shape', 'CPU TFLOP/s', 'GPU TFLOP/s', 'PyTorch TFLOP/s', 'GPU/PyTorch'];
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  const fmt = (row: string[]) => '  ' + row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  lines.push(fmt(head), ...table.map(fmt));
  return lines.join('\n') + '\n';
}
