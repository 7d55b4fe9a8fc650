// Learning-rate schedules as transformers' Trainer computes them (get_cosine_schedule_with_warmup /
// get_constant_schedule_with_warmup), stepped once per optimizer step. `step` starts at 0, so the first update
// of a run with warmup uses lr 0 (method.md §10.2: upstream's first update is a no-op too).
export type SchedulerKind = 'cosine' | 'constant';

export interface ScheduleSpec {
  kind: SchedulerKind;
  peakLr: number;
  maxSteps: number;
  warmupRatio: number;
  /** explicit warmup steps; overrides warmupRatio (HF: warmup_steps wins when > 0) */
  warmupSteps?: number;
}

/** HF: warmup steps = warmup_steps if > 0 else ceil(warmup_ratio * max_steps). */
export function warmupSteps(s: ScheduleSpec): number {
  if (s.warmupSteps && s.warmupSteps > 0) return s.warmupSteps;
  return Math.ceil(s.warmupRatio * s.maxSteps);
}

/** Learning rate used by the optimizer update number `step` (0-based). */
export function learningRate(s: ScheduleSpec, step: number): number {
  const w = warmupSteps(s);
  if (step < w) return (s.peakLr * step) / Math.max(1, w);
  if (s.kind === 'constant') return s.peakLr;
  const progress = (step - w) / Math.max(1, s.maxSteps - w);
  return s.peakLr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}
