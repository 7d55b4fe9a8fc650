// Shapes shared by the eval loaders, the runner, the result files and the scorer.

/** Keys used in `eval score --json`, in summary files and on the command line (case-insensitive there). */
export type BenchmarkKey = 'BLINK' | 'MMVP' | 'VSTAR' | 'HRBench4K' | 'HRBench8K' | 'MME-RealWorld-Lite';

export const BENCHMARK_KEYS: readonly BenchmarkKey[] = ['BLINK', 'MMVP', 'VSTAR', 'HRBench4K', 'HRBench8K', 'MME-RealWorld-Lite'];

/** An image as the generator receives it: a file path, or the encoded file bytes (JPEG/PNG/...). */
export type ImageInput = string | Buffer;

/**
 * One question as a benchmark loader yields it, before generation. Images are fetched separately and lazily
 * (`Benchmark.images`) so that listing 800 HR-Bench questions never touches 2.8 GB of pixels.
 */
export interface EvalItem {
  /** upstream's id (BLINK idx, MMVP Index, V* question_id, HR-Bench index, MME Question_id) */
  id: string | number;
  /** position in upstream loader order; --limit and --shard work on it */
  order: number;
  /** the user text exactly as upstream builds it (the generator adds the chat template and image tokens) */
  prompt: string;
  /** gold option letter, upper case */
  label: string;
  category: string;
  /** extra per-benchmark fields written into the result item (HR-Bench cycle_category, MME task/subtask) */
  extra?: Record<string, unknown>;
  /** set when the row itself is malformed: the item becomes an error item without generation */
  error?: string;
}

/** The images of one item, or why they could not be read (the item becomes an error item). */
export type ItemImages = { item: EvalItem; images: ImageInput[] } | { item: EvalItem; error: string };

/** A scored item as written into a results file. */
export interface ResultItem {
  id: string | number;
  prediction: string[];
  label: string;
  category: string;
  extracted: Record<string, string | null>;
  correct: Record<string, boolean>;
  [extra: string]: unknown;
}

/** An item that could not be generated (unreadable image, malformed row): counted in `errors`, never in `n`. */
export interface ErrorItem {
  id: string | number;
  label: string;
  category: string;
  error: string;
  [extra: string]: unknown;
}

export type StoredItem = ResultItem | ErrorItem;

export function isErrorItem(x: StoredItem): x is ErrorItem {
  return typeof (x as ErrorItem).error === 'string' && (x as ResultItem).prediction === undefined;
}

/** What the scorer needs of an item; upstream files hold only these (prediction may be a string there). */
export interface ScorableItem {
  id: string | number;
  prediction?: string[] | string;
  label: string;
  category?: string;
  error?: string;
  [extra: string]: unknown;
}
