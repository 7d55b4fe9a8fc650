// The GPU memory plan as text: one line per item, GPU and host totals against the capacities, the verdict.
import type { GpuPlan } from './gpu_memory';
import { formatBytes } from './units';

export function renderPlan(p: GpuPlan): string {
  const lines: string[] = [`GPU memory plan: ${p.kind}, ${p.model}`];
  for (const n of p.notes) lines.push(`  - ${n}`);
  const w = Math.max(...p.items.map((i) => i.what.length));
  for (const where of ['gpu', 'host'] as const) {
    lines.push(where === 'gpu' ? 'GPU:' : 'host:');
    for (const i of p.items.filter((x) => x.where === where))
      lines.push(`  ${i.what.padEnd(w)}  ${formatBytes(i.bytes).padStart(11)}   ${i.formula}`);
    const total = where === 'gpu' ? p.gpuBytes : p.hostBytes;
    const cap = where === 'gpu' ? p.gpuCapacity : p.hostCapacity;
    lines.push(`  ${'total'.padEnd(w)}  ${formatBytes(total).padStart(11)}   of ${formatBytes(cap)} (${((100 * total) / cap).toFixed(0)}%)`);
  }
  lines.push(p.fits ? 'fits' : `does not fit: ${p.problem ?? ''}`);
  return lines.join('\n') + '\n';
}
