// generation_config.json (model.md §8.1-8.2). Only what greedy decoding with a repetition penalty needs is
// normalised; absent values take transformers' defaults (repetition_penalty 1.0 = off).
import * as path from 'path';

import { Json, readJsonObject } from './json_file';

export interface GenerationConfig {
  repetitionPenalty: number;
  /** stop ids listed by the file (upstream's evaluator overrides them with <|im_end|> alone) */
  eosIds: number[];
  padId?: number;
  bosId?: number;
  doSample: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  maxNewTokens?: number;
  source: 'file' | 'defaults';
  raw: Json;
}

function optNumber(file: string, j: Json, key: string, check: (v: number) => boolean, what: string): number | undefined {
  const v = j[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) throw new Error(`${file}: ${key} must be ${what}, got ${JSON.stringify(v)}`);
  return v;
}

const isId = (v: number) => Number.isSafeInteger(v) && v >= 0;

export function loadGenerationConfig(dir: string): GenerationConfig {
  const file = path.join(dir, 'generation_config.json');
  const j = readJsonObject(file, true);
  if (!j) return { repetitionPenalty: 1.0, eosIds: [], doSample: false, source: 'defaults', raw: {} };
  const eos = j.eos_token_id;
  let eosIds: number[] = [];
  if (typeof eos === 'number') eosIds = [eos];
  else if (Array.isArray(eos)) eosIds = eos as number[];
  else if (eos !== undefined && eos !== null) throw new Error(`${file}: eos_token_id must be an id or a list of ids`);
  if (!eosIds.every((x) => typeof x === 'number' && isId(x))) throw new Error(`${file}: eos_token_id must hold non-negative integers`);
  return {
    repetitionPenalty: optNumber(file, j, 'repetition_penalty', (v) => v > 0, 'a positive number') ?? 1.0,
    eosIds,
    padId: optNumber(file, j, 'pad_token_id', isId, 'a token id'),
    bosId: optNumber(file, j, 'bos_token_id', isId, 'a token id'),
    doSample: j.do_sample === true,
    temperature: optNumber(file, j, 'temperature', (v) => v > 0, 'a positive number'),
    topK: optNumber(file, j, 'top_k', (v) => Number.isSafeInteger(v) && v >= 0, 'a non-negative integer'),
    topP: optNumber(file, j, 'top_p', (v) => v > 0 && v <= 1, 'in (0, 1]'),
    maxNewTokens: optNumber(file, j, 'max_new_tokens', (v) => Number.isSafeInteger(v) && v > 0, 'a positive integer'),
    source: 'file',
    raw: j,
  };
}
