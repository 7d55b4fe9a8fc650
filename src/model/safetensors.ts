// safetensors header reader (the writer is safetensors_writer.ts) (engineering.md §7): u64 little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}, then the data.
// Offsets are relative to the data start (8 + N). Only the header is read here; the native engine maps the data.
import * as fs from 'fs';

/** Element sizes of the safetensors dtypes (the spelling used in headers). */
export const DTYPE_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1,
  U16: 2, I16: 2, F16: 2, BF16: 2,
  U32: 4, I32: 4, F32: 4,
  U64: 8, I64: 8, F64: 8,
};

/** The safetensors library refuses headers above 100 MB; so do we (a bigger length means a corrupt file). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  dtype: string;
  shape: number[];
  /** byte offsets relative to dataStart: [begin, end) */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  path: string;
  /** absolute byte offset of the data section (8 + header length) */
  dataStart: number;
  fileSize: number;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

function fail(file: string, why: string): never {
  throw new Error(`safetensors ${file}: ${why}`);
}

function readExactly(fd: number, length: number, position: number): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buf, done, Math.min(length - done, 1 << 30), position + done);
    if (n === 0) break;
    done += n;
  }
  return done === length ? buf : buf.subarray(0, done);
}

function isNonNegInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/** Reads and validates the header of a .safetensors file (without reading the tensor data). */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new Error(`safetensors ${file}: cannot open (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  try {
    const fileSize = fs.fstatSync(fd).size;
    if (fileSize < 8) fail(file, `truncated: ${fileSize} bytes, shorter than the 8-byte header length`);
    const lenBuf = readExactly(fd, 8, 0);
    const n = lenBuf.readBigUInt64LE(0);
    if (n > BigInt(MAX_HEADER_BYTES)) fail(file, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt file?)`);
    const headerLen = Number(n);
    if (headerLen < 2) fail(file, `header length ${headerLen} is too small for a JSON object`);
    if (8 + headerLen > fileSize)
      fail(file, `truncated: header claims ${headerLen} bytes but the file has only ${fileSize - 8} after the length`);
    const raw = readExactly(fd, headerLen, 8);
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
    } catch (e) {
      fail(file, `header is not valid UTF-8 JSON (${(e as Error).message.split('\n')[0]})`);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) fail(file, 'header is not a JSON object');
    const dataStart = 8 + headerLen;
    const dataSize = fileSize - dataStart;
    const tensors = new Map<string, TensorInfo>();
    let metadata: Record<string, string> = {};
    for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
      if (name === '__metadata__') {
        metadata = parseMetadata(file, value);
        continue;
      }
      tensors.set(name, parseTensor(file, name, value, dataSize));
    }
    checkOverlap(file, tensors);
    return { path: file, dataStart, fileSize, tensors, metadata };
  } finally {
    fs.closeSync(fd);
  }
}

function parseMetadata(file: string, value: unknown): Record<string, string> {
  if (value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) fail(file, '__metadata__ is not an object');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== 'string') fail(file, `__metadata__.${k} is not a string`);
    out[k] = v;
  }
  return out;
}

function parseTensor(file: string, name: string, value: unknown, dataSize: number): TensorInfo {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(file, `tensor ${name}: entry is not an object`);
  const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof v.dtype !== 'string' || !(v.dtype in DTYPE_BYTES)) fail(file, `tensor ${name}: unknown dtype ${JSON.stringify(v.dtype)}`);
  if (!Array.isArray(v.shape) || !v.shape.every(isNonNegInt)) fail(file, `tensor ${name}: shape ${JSON.stringify(v.shape)} is not a list of non-negative integers`);
  const off = v.data_offsets;
  if (!Array.isArray(off) || off.length !== 2 || !off.every(isNonNegInt))
    fail(file, `tensor ${name}: data_offsets ${JSON.stringify(off)} is not [begin, end]`);
  const [begin, end] = off as number[];
  if (end < begin) fail(file, `tensor ${name}: data_offsets [${begin}, ${end}] end before they begin`);
  const shape = v.shape as number[];
  const numel = shape.reduce((a, b) => a * b, 1);
  const want = numel * DTYPE_BYTES[v.dtype];
  if (!Number.isSafeInteger(want) || end - begin !== want)
    fail(file, `tensor ${name}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, ${v.dtype} [${shape.join(', ')}] needs ${want}`);
  if (end > dataSize)
    fail(file, `tensor ${name}: data_offsets [${begin}, ${end}] lie beyond the ${dataSize}-byte data section (truncated file?)`);
  return { dtype: v.dtype, shape, begin, end };
}

function checkOverlap(file: string, tensors: Map<string, TensorInfo>): void {
  const spans = [...tensors].filter(([, t]) => t.end > t.begin).sort((a, b) => a[1].begin - b[1].begin);
  for (let i = 1; i < spans.length; i++) {
    const [pn, p] = spans[i - 1];
    const [cn, c] = spans[i];
    if (c.begin < p.end) fail(file, `tensors ${pn} [${p.begin}, ${p.end}) and ${cn} [${c.begin}, ${c.end}) overlap`);
  }
}
