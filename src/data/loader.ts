// The training data loader of train-stage1 / train-stage2: meta file -> records -> samples (stream.ts) ->
// packs (packer.ts, --enable-data-packing) or single samples -> TrainBatch (batch.ts). One loader serves one
// process (upstream shards over 8 ranks x 8 workers; with one process there is nothing to shard).
//
// Resume: state() is a JSON-serialisable DataCursor taken between next() calls. It holds the stream position,
// the packs already formed but not yet returned, the packer's open buffers (as global record indices; their
// samples are rebuilt on restore, which is deterministic) and the skip counts, so a restored loader returns
// exactly the batches an uninterrupted one would. (With upstream's algorithm one push emits at most one pack, so
// `ready` is normally empty between calls; it is kept so the cursor stays exact if that ever changes.)
import type { Tokenizer } from '../model/tokenizer';
import { ceIgnoredIds, collate, TrainBatch } from './batch';
import { DEFAULT_DATA_SEED, DEFAULT_LATENT_COUNT, DEFAULT_PACKING, DEFAULT_TRAIN_MAX_PIXELS, DEFAULT_TRAIN_MIN_PIXELS } from './constants';
import { ImageLoader, makeImageLoader, TrainImageOptions } from './images';
import { readMetaFile } from './meta';
import { Packer, PackingOptions } from './packer';
import { loadRecordFile } from './records';
import { sampleLength, TrainSample } from './sample';
import { SampleSkip, SkipCounts, SkipSummary } from './skips';
import { DatasetRecords, SampleStream, StreamPosition } from './stream';
import { resolveSpecialIds, SpecialIds } from './tokenize';

export interface TrainDataOptions {
  /** --data-path: the meta file */
  dataPath: string;
  /** --image-folder: overrides every meta entry's image_folder */
  imageFolder?: string;
  tokenizer: Tokenizer;
  /** decides which targets the CE ignores (method.md §7.4) */
  stage: 1 | 2;
  /** `<|lvr|>` slots per `<lvr>`; 8 */
  latentCount?: number;
  /** --image-min-pixels / --image-max-pixels: 100352 / 4014080 */
  imageMinPixels?: number;
  imageMaxPixels?: number;
  /** the checkpoint processor's normalisation and patch geometry (merge also drives the box grid) */
  preprocess?: TrainImageOptions['preprocess'];
  /** false with --no-shuffle; default true */
  shuffle?: boolean;
  /** default 42 */
  seed?: number;
  /** --enable-data-packing: true for upstream's values, or explicit values; false/undefined: unpacked */
  packing?: boolean | Partial<PackingOptions>;
  /** samples per batch on the unpacked path (--per-device-batch-size); default 1. Ignored when packing. */
  batchSize?: number;
  /** --strict: the first bad record throws instead of being skipped */
  strict?: boolean;
  /** replaces the image pipeline (tests) */
  loadImage?: ImageLoader;
  /** replaces the file-existence test of the image-path mapping (tests) */
  exists?: (p: string) => boolean;
}

/** The loader's resumable state (JSON). */
export interface DataCursor {
  version: 1;
  numRecords: number;
  shuffle: boolean;
  seed: number;
  packing: boolean;
  epoch: number;
  position: number;
  /** packs formed but not yet returned, then the packer's open buffers, as global record indices */
  ready: number[][];
  open: number[][];
  counts: SkipCounts;
}

export class TrainDataLoader {
  readonly ids: SpecialIds;
  private readonly packer: Packer<TrainSample> | undefined;
  private ready: TrainSample[][] = [];

  private constructor(
    readonly stream: SampleStream,
    ids: SpecialIds,
    private readonly collateOpts: Parameters<typeof collate>[1],
    packing: PackingOptions | undefined,
    private readonly batchSize: number,
  ) {
    this.ids = ids;
    this.packer = packing ? new Packer(packing, sampleLength) : undefined;
  }

  /** Reads the meta file and every data file (in memory, as upstream), and sets up the stream. */
  static open(opts: TrainDataOptions): TrainDataLoader {
    const specs = readMetaFile(opts.dataPath, opts.imageFolder);
    const datasets: DatasetRecords[] = specs.map((spec) => ({ spec, records: loadRecordFile(spec.dataPath) }));
    return TrainDataLoader.fromDatasets(datasets, opts);
  }

  /** Same as open() with the datasets already in memory. */
  static fromDatasets(datasets: DatasetRecords[], opts: Omit<TrainDataOptions, 'dataPath' | 'imageFolder'>): TrainDataLoader {
    const ids = resolveSpecialIds(opts.tokenizer);
    const latentCount = opts.latentCount ?? DEFAULT_LATENT_COUNT;
    if (!Number.isSafeInteger(latentCount) || latentCount < 1) throw new Error(`the latent count must be a positive integer, got ${latentCount}`);
    const merge = opts.preprocess?.merge ?? 2;
    const packing = opts.packing === true ? { ...DEFAULT_PACKING } : opts.packing ? { ...DEFAULT_PACKING, ...opts.packing } : undefined;
    const batchSize = opts.batchSize ?? 1;
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new Error(`--per-device-batch-size must be a positive integer, got ${batchSize}`);
    const loadImage = opts.loadImage ?? makeImageLoader({
      minPixels: opts.imageMinPixels ?? DEFAULT_TRAIN_MIN_PIXELS,
      maxPixels: opts.imageMaxPixels ?? DEFAULT_TRAIN_MAX_PIXELS,
      preprocess: opts.preprocess,
    });
    const stream = new SampleStream(
      datasets,
      { tokenizer: opts.tokenizer, ids, latentCount, merge, loadImage, maxTokens: packing?.maxPackedTokens, exists: opts.exists },
      { shuffle: opts.shuffle ?? true, seed: opts.seed ?? DEFAULT_DATA_SEED, strict: opts.strict ?? false },
    );
    const collateOpts = { imagePadId: ids.imagePad, latentCount, merge, ceIgnoredIds: ceIgnoredIds(opts.stage, ids) };
    return new TrainDataLoader(stream, ids, collateOpts, packing, batchSize);
  }

  get packing(): PackingOptions | undefined {
    return this.packer?.opts;
  }

  /** The next micro-batch: a pack, or batchSize samples on the unpacked path. The stream never ends. */
  async next(): Promise<TrainBatch> {
    return collate(await this.nextSamples(), this.collateOpts);
  }

  /** The samples of the next micro-batch (before collation). */
  async nextSamples(): Promise<TrainSample[]> {
    if (!this.packer) {
      const out: TrainSample[] = [];
      while (out.length < this.batchSize) out.push(await this.stream.next());
      return out;
    }
    while (this.ready.length === 0) this.ready.push(...this.packer.push(await this.stream.next()));
    return this.ready.shift()!;
  }

  summary(): SkipSummary {
    return this.stream.skips.summary();
  }

  state(): DataCursor {
    const ids = (packs: TrainSample[][]) => packs.map((p) => p.map((s) => s.ref.global));
    const { epoch, position } = this.stream.where();
    return {
      version: 1,
      numRecords: this.stream.numRecords,
      shuffle: this.stream.opts.shuffle,
      seed: this.stream.opts.seed,
      packing: this.packer !== undefined,
      epoch,
      position,
      ready: ids(this.ready),
      open: this.packer ? ids(this.packer.open()) : [],
      counts: this.stream.skips.counts(),
    };
  }

  /** Continues from a cursor saved by state(); the data and the options must be the same as then. */
  async restore(c: DataCursor): Promise<void> {
    if (typeof c !== 'object' || c === null || c.version !== 1) throw new Error('data cursor: not a version-1 data cursor');
    const expect: Array<[string, unknown, unknown, string]> = [
      ['numRecords', c.numRecords, this.stream.numRecords, 'the training data changed since the checkpoint'],
      ['shuffle', c.shuffle, this.stream.opts.shuffle, 'pass the same --no-shuffle setting as the interrupted run'],
      ['seed', c.seed, this.stream.opts.seed, 'pass the same --seed as the interrupted run'],
      ['packing', c.packing, this.packer !== undefined, 'pass the same --enable-data-packing as the interrupted run'],
    ];
    for (const [k, got, want, hint] of expect)
      if (got !== want) throw new Error(`data cursor: ${k} is ${JSON.stringify(got)} in the checkpoint but ${JSON.stringify(want)} now (${hint})`);
    if (!Array.isArray(c.ready) || !Array.isArray(c.open)) throw new Error('data cursor: ready/open must be lists of record-index lists');
    this.stream.seek({ epoch: c.epoch, position: c.position } as StreamPosition);
    const rebuild = async (packs: number[][]): Promise<TrainSample[][]> => {
      const out: TrainSample[][] = [];
      for (const p of packs) {
        if (!Array.isArray(p)) throw new Error('data cursor: ready/open must be lists of record-index lists');
        const samples: TrainSample[] = [];
        for (const g of p) {
          try {
            samples.push(await this.stream.load(g));
          } catch (e) {
            if (e instanceof SampleSkip) throw new Error(`data cursor: record ${g} was usable when the checkpoint was saved but now fails (${e.message})`);
            throw e;
          }
        }
        out.push(samples);
      }
      return out;
    };
    this.ready = await rebuild(c.ready);
    const open = await rebuild(c.open);
    if (this.packer) this.packer.restore(open);
    else if (open.length || this.ready.length) throw new Error('data cursor: an unpacked run has no open packs');
    this.stream.skips.restore(c.counts);
  }
}
