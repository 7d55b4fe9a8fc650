// Skipped training records: every skip has a reason, is counted, and is summarised at the end of a run
// (issue #5 §9). In strict mode the first skip throws instead, naming the record and the reason.

/** Why a record was not used. Upstream skips the same records (or crashes its data worker on them). */
export const SKIP_REASONS = {
  malformed_record: 'malformed record (fields, types, or conversation turns)',
  invalid_box: 'a box is not 4 numbers',
  box_out_of_range: 'a box coordinate is outside [0, 1]',
  box_inverted: 'a box has x1 < x0 or y1 < y0',
  lvr_box_mismatch: 'the number of <|lvr|> slots is not latent count x number of boxes',
  image_placeholder_mismatch: 'the number of <image> placeholders differs from the number of images',
  missing_image: 'an image file is missing',
  undecodable_image: 'an image fails to decode or preprocess',
  too_long: 'the sample is longer than the packing limit',
} as const;

export type SkipReason = keyof typeof SKIP_REASONS;

/** Where a record comes from, for messages and the resume cursor. */
export interface RecordRef {
  dsName: string;
  file: string;
  /** index in its file */
  index: number;
  /** index in the concatenation of all files (meta order, then file order) */
  global: number;
}

export function describeRecord(r: RecordRef): string {
  return `${r.dsName}[${r.index}] (${r.file})`;
}

/** Thrown by the per-record pipeline; the stream catches it, counts it, and moves on (or rethrows if strict). */
export class SampleSkip extends Error {
  constructor(readonly reason: SkipReason, readonly detail: string) {
    super(`${SKIP_REASONS[reason]}: ${detail}`);
    this.name = 'SampleSkip';
  }
}

export interface SkipSummary {
  /** records read (used + skipped); a record met again after a wrap-around counts again */
  read: number;
  used: number;
  skipped: number;
  byReason: Partial<Record<SkipReason, number>>;
  /** the first few skipped records per reason, with details */
  examples: Partial<Record<SkipReason, string[]>>;
}

export interface SkipCounts {
  read: number;
  used: number;
  byReason: Partial<Record<SkipReason, number>>;
}

const MAX_EXAMPLES = 3;

export class SkipCounter {
  private read = 0;
  private used = 0;
  private readonly byReason: Partial<Record<SkipReason, number>> = {};
  private readonly examples: Partial<Record<SkipReason, string[]>> = {};

  constructor(readonly strict = false) {}

  countUsed(): void {
    this.read++;
    this.used++;
  }

  /** Counts a skip; throws a one-line error in strict mode. */
  countSkip(ref: RecordRef, skip: SampleSkip): void {
    if (this.strict) throw new Error(`data: ${describeRecord(ref)}: ${skip.message} (--strict)`);
    this.read++;
    this.byReason[skip.reason] = (this.byReason[skip.reason] ?? 0) + 1;
    const ex = (this.examples[skip.reason] ??= []);
    // Distinct examples only: after a wrap-around the same record is skipped (and counted) again.
    const line = `${describeRecord(ref)}: ${skip.detail}`;
    if (ex.length < MAX_EXAMPLES && !ex.includes(line)) ex.push(line);
  }

  summary(): SkipSummary {
    const skipped = Object.values(this.byReason).reduce((a, b) => a + (b ?? 0), 0);
    return { read: this.read, used: this.used, skipped, byReason: { ...this.byReason }, examples: structuredClone(this.examples) };
  }

  /** counts only (for the resume cursor; examples are not carried over) */
  counts(): SkipCounts {
    return { read: this.read, used: this.used, byReason: { ...this.byReason } };
  }

  restore(c: SkipCounts): void {
    this.read = c.read;
    this.used = c.used;
    for (const k of Object.keys(this.byReason) as SkipReason[]) delete this.byReason[k];
    for (const [k, v] of Object.entries(c.byReason)) {
      if (!(k in SKIP_REASONS)) throw new Error(`data cursor: unknown skip reason ${JSON.stringify(k)}`);
      this.byReason[k as SkipReason] = v;
    }
  }
}

/** One line per reason, for the end-of-run log. */
export function formatSkipSummary(s: SkipSummary): string {
  const parts = (Object.keys(s.byReason) as SkipReason[]).map((r) => `${r}=${s.byReason[r]}`);
  return `data: ${s.used} samples used, ${s.skipped} skipped${parts.length ? ` (${parts.join(', ')})` : ''}`;
}
