// Constants of V-Reflection's training data (method.md §2.1, §4.1, §5.2, §14) and the defaults of the
// train-stage1 / train-stage2 data flags (issue #5).

/** label value that the cross-entropy ignores */
export const IGNORE_INDEX = -100;

/** placeholders in the LLaVA records */
export const IMAGE_PLACEHOLDER = '<image>';
export const LVR_PLACEHOLDER = '<lvr>';

/** Qwen / V-Reflection token strings (ids always come from the tokenizer) */
export const TOKENS = {
  imStart: '<|im_start|>',
  imEnd: '<|im_end|>',
  visionStart: '<|vision_start|>',
  visionEnd: '<|vision_end|>',
  imagePad: '<|image_pad|>',
  lvrStart: '<|lvr_start|>',
  lvr: '<|lvr|>',
  lvrLatentEnd: '<|lvr_latent_end|>',
  lvrEnd: '<|lvr_end|>',
  pad: '<|endoftext|>',
} as const;

/** the system message of every training sample (SYSTEM_MESSAGE; LVR_SYSTEM_MESSAGE is unused upstream) */
export const TRAIN_SYSTEM_MESSAGE = 'You are a helpful assistant.';

/** `<|lvr|>` slots per `<lvr>` placeholder (fixed_num_of_lvr_tokens in the released scripts) */
export const DEFAULT_LATENT_COUNT = 8;

/** --image-min-pixels / --image-max-pixels: 128 and 5120 merged tokens of 28 x 28 px */
export const DEFAULT_TRAIN_MIN_PIXELS = 128 * 28 * 28; // 100352
export const DEFAULT_TRAIN_MAX_PIXELS = 5120 * 28 * 28; // 4014080

/** upstream's packing parameters (make_packed_supervised_data_module_lvr + release scripts) */
export const DEFAULT_PACKING = {
  maxPackedTokens: 16384,
  longSeqThreshold: 4096,
  maxInstancesPerPack: 4,
  maxBufferSize: 100,
} as const;

/** the data shuffle seed of the release scripts (random_seed 42) */
export const DEFAULT_DATA_SEED = 42;
