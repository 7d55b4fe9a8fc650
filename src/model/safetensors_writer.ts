// The one safetensors writer: the header first, then each tensor's bytes as its producer hands them over, so a
// multi-GB checkpoint never sits in memory (writeSafetensors below is the in-memory front end). Format (engineering.md §7): u64 little-endian header length,
// compact JSON header ({"__metadata__": ..., name: {dtype, shape, data_offsets}}), space-padded to a multiple of
// 8 bytes as Python safetensors pads it, then the data. Tensors are laid out in the order given.
import * as fs from 'fs';

import { DTYPE_BYTES } from './safetensors';

/** A safetensors dtype spelling (BF16, F32, ...): checked against DTYPE_BYTES when the header is built. */
export type SafetensorsDType = string;

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
}

export function tensorBytes(t: TensorEntry): number {
  return t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
}

/** The 8-byte length prefix and the padded JSON header for these tensors, in this order. */
export function safetensorsHeader(tensors: TensorEntry[], metadata: Record<string, string> = { format: 'pt' }): Buffer {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || t.name in header) throw new Error(`safetensors: duplicate or reserved tensor name "${t.name}"`);
    if (!(t.dtype in DTYPE_BYTES)) throw new Error(`safetensors: unknown dtype ${t.dtype} for "${t.name}"`);
    if (t.shape.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`safetensors: bad shape [${t.shape}] for "${t.name}"`);
    const n = tensorBytes(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([prefix, json]);
}

/** Receives one tensor's bytes in pieces; the pieces must add up to exactly the tensor's size. */
export type TensorProducer = (t: TensorEntry, write: (bytes: Uint8Array) => void) => void;

/**
 * Writes `file` (through `<file>.<pid>.partial`, fsynced and renamed at the end, so an interrupted run never leaves a
 * file that looks complete, and two processes writing the same path never share a temporary file). Returns the total bytes written.
 */
export function writeSafetensorsStream(file: string, tensors: TensorEntry[], produce: TensorProducer, metadata?: Record<string, string>): number {
  const tmp = `${file}.${process.pid}.partial`;
  const head = safetensorsHeader(tensors, metadata);
  const fd = fs.openSync(tmp, 'w');
  let total = 0;
  try {
    writeAll(fd, head);
    total += head.length;
    for (const t of tensors) {
      const expected = tensorBytes(t);
      let got = 0;
      produce(t, (bytes) => {
        got += bytes.byteLength;
        if (got > expected) throw new Error(`safetensors: producer wrote more than the ${expected} bytes of "${t.name}"`);
        writeAll(fd, bytes);
      });
      if (got !== expected) throw new Error(`safetensors: producer wrote ${got} of the ${expected} bytes of "${t.name}"`);
      total += got;
    }
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  return total;
}

/** fs.writeSync takes at most 2 GiB at once: large pieces go out 1 GiB at a time. */
const MAX_WRITE = 1 << 30;

function writeAll(fd: number, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.byteLength) off += fs.writeSync(fd, bytes, off, Math.min(bytes.byteLength - off, MAX_WRITE));
}

/** A tensor to write: raw little-endian bytes (any typed array or Buffer) with a dtype and shape. */
export interface TensorData {
  dtype: string;
  shape: number[];
  data: ArrayBufferView;
}

/**
 * Writes tensors held in memory. They are laid out largest element size first, then by name (what the Python
 * writer does), so every tensor is aligned to its element size.
 */
export function writeSafetensors(
  file: string,
  tensors: Map<string, TensorData> | Record<string, TensorData>,
  metadata: Record<string, string> = {},
): void {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  for (const [name, t] of entries) {
    if (!(t.dtype in DTYPE_BYTES)) throw new Error(`writeSafetensors ${file}: tensor ${name}: unknown dtype ${t.dtype}`);
    const want = tensorBytes({ name, ...t });
    if (t.data.byteLength !== want)
      throw new Error(`writeSafetensors ${file}: tensor ${name}: ${t.data.byteLength} bytes, ${t.dtype} [${t.shape.join(', ')}] needs ${want}`);
  }
  entries.sort((a, b) => DTYPE_BYTES[b[1].dtype] - DTYPE_BYTES[a[1].dtype] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const byName = new Map(entries);
  const list: TensorEntry[] = entries.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape }));
  writeSafetensorsStream(file, list, (e, write) => {
    const d = byName.get(e.name)!.data;
    write(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }, metadata);
}
