// A page body read as a stream of uncompressed bytes, for pages too big to hold: pyarrow checks its page
// limits only once per 1024 values, so a column of large strings (HR-Bench base64 images, BLINK image
// bytes) becomes one dictionary page, or PLAIN data pages, of hundreds of MB. Snappy (pyarrow's default)
// and uncompressed pages can be streamed; other codecs are decoded whole by the caller.
import type * as fs from 'fs';

import { SnappyPageStream } from './snappy-stream';

export interface PageByteSource {
  /** uncompressed size of the page body */
  readonly size: number;
  /** uncompressed offset of the next byte */
  readonly position: number;
  /** exactly n bytes (a fresh copy) */
  read(n: number): Promise<Uint8Array>;
  skip(n: number): Promise<void>;
  /** moves to an uncompressed offset, backwards too */
  seek(p: number): Promise<void>;
}

class RawPageStream implements PageByteSource {
  position = 0;

  constructor(
    private readonly fh: fs.promises.FileHandle,
    private readonly what: string,
    private readonly start: number,
    readonly size: number,
  ) {}

  async read(n: number): Promise<Uint8Array> {
    if (this.position + n > this.size) throw new Error(`${this.what}: read past the end of the page (${this.size} bytes)`);
    const out = new Uint8Array(n);
    let done = 0;
    while (done < n) {
      const { bytesRead } = await this.fh.read(out, done, n - done, this.start + this.position + done);
      if (bytesRead === 0) throw new Error(`${this.what}: unexpected end of file at byte ${this.start + this.position + done}`);
      done += bytesRead;
    }
    this.position += n;
    return out;
  }

  async skip(n: number): Promise<void> {
    if (this.position + n > this.size) throw new Error(`${this.what}: read past the end of the page (${this.size} bytes)`);
    this.position += n;
  }

  async seek(p: number): Promise<void> {
    if (p > this.size) throw new Error(`${this.what}: seek to ${p} beyond the page's ${this.size} bytes`);
    this.position = p;
  }
}

/** A stream over [start, start + compressedSize) of the file, or undefined when the codec cannot be streamed. */
export function openPageStream(
  fh: fs.promises.FileHandle,
  what: string,
  codec: string,
  start: number,
  compressedSize: number,
  uncompressedSize: number,
): PageByteSource | undefined {
  if (codec === 'UNCOMPRESSED') {
    if (compressedSize !== uncompressedSize) throw new Error(`${what}: uncompressed page of ${compressedSize} bytes claims ${uncompressedSize}`);
    return new RawPageStream(fh, what, start, uncompressedSize);
  }
  if (codec === 'SNAPPY') return new SnappyPageStream(fh, what, start, compressedSize, uncompressedSize);
  return undefined;
}

/** Reads a PLAIN BYTE_ARRAY value: a 4-byte little-endian length, then the bytes. */
export async function readPlainByteArray(src: PageByteSource, what: string): Promise<Uint8Array> {
  const len = await readLength(src, what);
  return src.read(len);
}

export async function skipPlainByteArray(src: PageByteSource, what: string): Promise<void> {
  await src.skip(await readLength(src, what));
}

async function readLength(src: PageByteSource, what: string): Promise<number> {
  const b = await src.read(4);
  const len = b[0] + b[1] * 0x100 + b[2] * 0x10000 + b[3] * 0x1000000;
  if (src.position + len > src.size) throw new Error(`${what}: value of ${len} bytes runs past the end of its page`);
  return len;
}
