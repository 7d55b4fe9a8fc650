// Reading the small JSON files of a checkpoint directory with one-line errors that name the file.
import * as fs from 'fs';

export type Json = Record<string, unknown>;

/** Parses a JSON object file; `undefined` when the file is absent and `optional` is set. */
export function readJsonObject(file: string, optional: true): Json | undefined;
export function readJsonObject(file: string, optional?: false): Json;
export function readJsonObject(file: string, optional = false): Json | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (optional && code === 'ENOENT') return undefined;
    throw new Error(`cannot read ${file} (${code ?? String(e)})`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${file} does not hold a JSON object`);
  return v as Json;
}

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
