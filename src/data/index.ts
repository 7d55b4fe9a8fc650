// The training-data layer's public face (architecture.md: data/ never imports train/). The trainer needs:
// TrainDataLoader.open(...) -> next(): TrainBatch, state()/restore() for --resume, summary() for the end-of-run
// skip report; TrainBatch (batch.ts) is the contract with the native Trainer.step.
export type { TrainBatch, CollateOptions } from './batch';
export { collate, ceIgnoredIds } from './batch';
export { checkBatch } from './batch_check';
export { DEFAULT_DATA_SEED, DEFAULT_LATENT_COUNT, DEFAULT_PACKING, DEFAULT_TRAIN_MAX_PIXELS, DEFAULT_TRAIN_MIN_PIXELS, IGNORE_INDEX } from './constants';
export type { ImageLoader, TrainImage } from './images';
export { checkPixelBounds, makeImageLoader } from './images';
export type { DataCursor, TrainDataOptions } from './loader';
export { TrainDataLoader } from './loader';
export type { BatchFootprint, MemoryEstimate } from './memory';
export { batchFootprint, estimateActivationMemory } from './memory';
export type { PackingOptions } from './packer';
export type { TrainSample } from './sample';
export type { SkipReason, SkipSummary } from './skips';
export { formatSkipSummary, SKIP_REASONS } from './skips';
export { resolveSpecialIds } from './tokenize';
export type { SpecialIds } from './tokenize';
