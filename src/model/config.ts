// config.json of a Qwen2.5-VL (V-Reflection) checkpoint, in either layout (model.md §1.3-1.5):
// transformers 4.x/released flat (text fields at the top level, possibly with a text_config copy) or 5.x nested
// (text_config / vision_config). Normalised into ModelConfig; a missing required field is an error naming it,
// never a default (transformers' defaults describe a different model size).
import * as path from 'path';

import { isObject, Json, readJsonObject } from './json_file';
import { loadPreprocessorConfig, PreprocessorConfig } from './preprocessor_config';

export interface TextConfig {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  rmsEps: number;
  ropeTheta: number;
  mropeSection: [number, number, number];
  tieEmbeddings: boolean;
  maxPositionEmbeddings?: number;
}

export interface VisionConfig {
  depth: number;
  hidden: number;
  heads: number;
  intermediate: number;
  outHidden: number;
  patch: number;
  temporalPatch: number;
  merge: number;
  windowSize: number;
  fullattBlocks: number[];
  inChannels: number;
  ropeTheta: number;
}

export interface TokenIds {
  image: number;
  video: number;
  visionStart: number;
  visionEnd: number;
}

/** V-Reflection's added-token ids as stored in config.json (method.md §2.2); absent in plain Qwen checkpoints. */
export interface LvrIds {
  start?: number;
  lvr?: number;
  latentEnd?: number;
  end?: number;
}

export interface ModelConfig {
  dir: string;
  file: string;
  layout: 'flat' | 'nested';
  modelType?: string;
  text: TextConfig;
  vision: VisionConfig;
  tokens: TokenIds;
  lvr: LvrIds;
  /** V-Reflection module switches (BCM / DAC); informational, inference does not need the modules */
  useBoxFeatureResampler: boolean;
  useStage2Distillation: boolean;
  preprocess: PreprocessorConfig;
  raw: Json;
}

class Fields {
  constructor(readonly file: string) {}

  fail(what: string): never {
    throw new Error(`${this.file}: ${what}`);
  }

  int(v: unknown, key: string, min = 1): number {
    if (v === undefined || v === null) this.fail(`missing required field ${key}`);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) this.fail(`${key} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v;
  }

  num(v: unknown, key: string): number {
    if (v === undefined || v === null) this.fail(`missing required field ${key}`);
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(`${key} must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  }

  optInt(v: unknown, key: string, min = 0): number | undefined {
    return v === undefined || v === null ? undefined : this.int(v, key, min);
  }

  intList(v: unknown, key: string): number[] {
    if (v === undefined || v === null) this.fail(`missing required field ${key}`);
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0))
      this.fail(`${key} must be a list of non-negative integers, got ${JSON.stringify(v)}`);
    return v as number[];
  }
}

function obj(v: unknown): Json {
  return isObject(v) ? v : {};
}

/** First defined value among candidates, with the key path that supplied it (for error messages). */
function first(cands: Array<[unknown, string]>): [unknown, string] {
  for (const c of cands) if (c[0] !== undefined && c[0] !== null) return c;
  return [undefined, cands[0][1]];
}

function parseText(j: Json, f: Fields): TextConfig {
  const tc = obj(j.text_config);
  // text field X: text_config.X if present, else top-level X (model.md §1.5)
  const get = (k: string): [unknown, string] => first([[tc[k], `text_config.${k}`], [j[k], k]]);
  const int = (k: string) => {
    const [v, where] = get(k);
    return f.int(v, v === undefined ? k : where);
  };
  const hidden = int('hidden_size');
  const heads = int('num_attention_heads');
  const [kvRaw, kvWhere] = get('num_key_value_heads');
  // Qwen2 semantics: without num_key_value_heads every head has its own K/V (plain multi-head attention)
  const kvHeads = kvRaw === undefined || kvRaw === null ? heads : f.int(kvRaw, kvWhere);
  if (hidden % heads) f.fail(`hidden_size ${hidden} is not divisible by num_attention_heads ${heads}`);
  if (heads % kvHeads) f.fail(`num_attention_heads ${heads} is not divisible by num_key_value_heads ${kvHeads}`);
  const headDim = hidden / heads;
  const [hd, hdWhere] = get('head_dim');
  if (hd !== undefined && hd !== headDim) f.fail(`${hdWhere} ${JSON.stringify(hd)} differs from hidden_size/num_attention_heads = ${headDim} (unsupported)`);

  const [act, actWhere] = get('hidden_act');
  if (act !== undefined && act !== 'silu') f.fail(`${actWhere} ${JSON.stringify(act)} is not supported (only silu)`);
  const [sw] = get('use_sliding_window');
  if (sw === true) f.fail('use_sliding_window true is not supported (Qwen2.5-VL uses full attention in every layer)');

  const rp = obj(tc.rope_parameters), rsInner = obj(tc.rope_scaling), rs = obj(j.rope_scaling), rpTop = obj(j.rope_parameters);
  const [secRaw, secWhere] = first([
    [rp.mrope_section, 'text_config.rope_parameters.mrope_section'],
    [rsInner.mrope_section, 'text_config.rope_scaling.mrope_section'],
    [rs.mrope_section, 'rope_scaling.mrope_section'],
    [rpTop.mrope_section, 'rope_parameters.mrope_section'],
  ]);
  if (secRaw === undefined) f.fail('missing required field rope_scaling.mrope_section (or text_config.rope_parameters.mrope_section)');
  const sec = f.intList(secRaw, secWhere);
  if (sec.length !== 3) f.fail(`${secWhere} must have 3 entries (t, h, w), got ${JSON.stringify(sec)}`);
  if (sec[0] + sec[1] + sec[2] !== headDim / 2)
    f.fail(`${secWhere} ${JSON.stringify(sec)} sums to ${sec[0] + sec[1] + sec[2]}, expected head_dim/2 = ${headDim / 2}`);
  for (const [r, where] of [[rp, 'text_config.rope_parameters'], [rsInner, 'text_config.rope_scaling'], [rs, 'rope_scaling']] as Array<[Json, string]>) {
    const t = r.rope_type ?? r.type;
    if (t !== undefined && t !== 'default' && t !== 'mrope') f.fail(`${where}.rope_type ${JSON.stringify(t)} is not supported (only default/mrope)`);
  }
  const [theta, thetaWhere] = first([
    [rp.rope_theta, 'text_config.rope_parameters.rope_theta'],
    [tc.rope_theta, 'text_config.rope_theta'],
    [j.rope_theta, 'rope_theta'],
  ]);
  const [eps, epsWhere] = get('rms_norm_eps');
  const [tieTop, tieIn] = [j.tie_word_embeddings, tc.tie_word_embeddings];
  const tie = tieTop ?? tieIn ?? false;
  if (typeof tie !== 'boolean') f.fail(`tie_word_embeddings must be true or false, got ${JSON.stringify(tie)}`);
  const [mpe, mpeWhere] = get('max_position_embeddings');
  return {
    hidden,
    layers: int('num_hidden_layers'),
    heads,
    kvHeads,
    headDim,
    intermediate: int('intermediate_size'),
    vocab: int('vocab_size'),
    rmsEps: f.num(eps, eps === undefined ? 'rms_norm_eps' : epsWhere),
    ropeTheta: f.num(theta, theta === undefined ? 'rope_theta' : thetaWhere),
    mropeSection: [sec[0], sec[1], sec[2]],
    tieEmbeddings: tie || tieIn === true,
    maxPositionEmbeddings: f.optInt(mpe, mpeWhere, 1),
  };
}

function parseVision(j: Json, f: Fields): VisionConfig {
  if (!isObject(j.vision_config)) f.fail('missing required field vision_config');
  const v = j.vision_config;
  const int = (k: string, min = 1) => f.int(v[k], `vision_config.${k}`, min);
  const depth = int('depth');
  const hidden = int('hidden_size');
  const heads = int('num_heads');
  if (hidden % heads || (hidden / heads) % 4)
    f.fail(`vision_config.hidden_size ${hidden} / num_heads ${heads} must give a head size divisible by 4 (2D RoPE)`);
  if (v.hidden_act !== undefined && v.hidden_act !== 'silu') f.fail(`vision_config.hidden_act ${JSON.stringify(v.hidden_act)} is not supported (only silu)`);
  const patch = int('patch_size');
  const merge = int('spatial_merge_size');
  const windowSize = int('window_size');
  if (windowSize % (patch * merge)) f.fail(`vision_config.window_size ${windowSize} is not a multiple of patch_size*spatial_merge_size = ${patch * merge}`);
  const fullatt = f.intList(v.fullatt_block_indexes, 'vision_config.fullatt_block_indexes');
  const bad = fullatt.find((b) => b >= depth);
  if (bad !== undefined) f.fail(`vision_config.fullatt_block_indexes lists block ${bad}, but depth is ${depth}`);
  const [ch, chWhere] = first([[v.in_channels, 'vision_config.in_channels'], [v.in_chans, 'vision_config.in_chans']]);
  const inChannels = ch === undefined ? 3 : f.int(ch, chWhere);
  if (inChannels !== 3) f.fail(`${chWhere} ${inChannels} is not supported (RGB images have 3 channels)`);
  const rp = obj(v.rope_parameters);
  return {
    depth,
    hidden,
    heads,
    intermediate: int('intermediate_size'),
    outHidden: int('out_hidden_size'),
    patch,
    temporalPatch: int('temporal_patch_size'),
    merge,
    windowSize,
    fullattBlocks: fullatt,
    inChannels,
    ropeTheta: rp.rope_theta === undefined ? 10000 : f.num(rp.rope_theta, 'vision_config.rope_parameters.rope_theta'),
  };
}

function tokenId(j: Json, f: Fields, key: string, required: true): number;
function tokenId(j: Json, f: Fields, key: string, required: false): number | undefined;
function tokenId(j: Json, f: Fields, key: string, required: boolean): number | undefined {
  const [v, where] = first([[j[key], key], [obj(j.text_config)[key], `text_config.${key}`]]);
  if (v === undefined) {
    if (required) f.fail(`missing required field ${key}`);
    return undefined;
  }
  return f.int(v, where, 0);
}

/** Reads and normalises `<dir>/config.json` (and `<dir>/preprocessor_config.json` when present). */
export function loadModelConfig(dir: string): ModelConfig {
  const file = path.join(dir, 'config.json');
  const j = readJsonObject(file);
  const f = new Fields(file);
  const modelType = typeof j.model_type === 'string' ? j.model_type : undefined;
  if (modelType !== undefined && modelType !== 'qwen2_5_vl') f.fail(`model_type ${JSON.stringify(modelType)} is not supported (expected qwen2_5_vl)`);
  const text = parseText(j, f);
  const vision = parseVision(j, f);
  const tokens: TokenIds = {
    image: tokenId(j, f, 'image_token_id', true),
    video: tokenId(j, f, 'video_token_id', true),
    visionStart: tokenId(j, f, 'vision_start_token_id', true),
    visionEnd: tokenId(j, f, 'vision_end_token_id', true),
  };
  for (const [k, id] of Object.entries(tokens))
    if (id >= text.vocab) f.fail(`${k} token id ${id} is outside the vocabulary (vocab_size ${text.vocab})`);
  const lvr: LvrIds = {
    start: tokenId(j, f, 'lvr_start_id', false),
    lvr: tokenId(j, f, 'lvr_id', false),
    latentEnd: tokenId(j, f, 'lvr_latent_end_id', false),
    end: tokenId(j, f, 'lvr_end_id', false),
  };
  for (const [k, id] of Object.entries(lvr))
    if (id !== undefined && id >= text.vocab) f.fail(`lvr ${k} id ${id} is outside the vocabulary (vocab_size ${text.vocab})`);
  const preprocess = loadPreprocessorConfig(dir);
  if (preprocess.patch !== vision.patch || preprocess.merge !== vision.merge || preprocess.temporalPatch !== vision.temporalPatch)
    throw new Error(
      `${path.join(dir, 'preprocessor_config.json')}: patch/merge/temporal sizes ${preprocess.patch}/${preprocess.merge}/${preprocess.temporalPatch} ` +
        `differ from config.json's ${vision.patch}/${vision.merge}/${vision.temporalPatch}`,
    );
  return {
    dir,
    file,
    layout: isObject(j.text_config) && j.hidden_size === undefined ? 'nested' : 'flat',
    modelType,
    text,
    vision,
    tokens,
    lvr,
    useBoxFeatureResampler: j.use_box_feature_resampler === true,
    useStage2Distillation: j.use_stage2_distillation === true,
    preprocess,
    raw: j,
  };
}
