// Snappy (raw format, as parquet stores a page) decompressed incrementally from a file range, so a 1 GB
// page never sits in memory: the output is produced in 1 MiB steps over a window that keeps the last 64 KiB
// (copies reach back at most 65535 bytes in the encoders we meet: Google's snappy, which Arrow uses, works
// in 64 KiB blocks; a longer reach is reported as SnappyWindowError so the caller can decode whole instead).
// Seeking backwards restarts from the nearest checkpoint (taken every 4 MiB of output at an element
// boundary: compressed position plus the 64 KiB history, i.e. 1.6% of the page), so random access costs at
// most 4 MiB of decoding.
import type * as fs from 'fs';

import type { PageByteSource } from './page-stream';

const HISTORY = 64 * 1024;
const OUT_STEP = 1024 * 1024;
const IN_STEP = 1024 * 1024;
const CHECKPOINT_EVERY = 4 * 1024 * 1024;

export class SnappyWindowError extends Error {}

interface Checkpoint {
  /** file position of the next element */
  inAbs: number;
  /** uncompressed offset reached there */
  outAbs: number;
  history: Uint8Array;
}

export class SnappyPageStream implements PageByteSource {
  private readonly inBuf = new Uint8Array(IN_STEP);
  private inPos = 0;
  private inLen = 0;
  /** file position of the byte after inBuf[inLen - 1] */
  private inFileNext: number;
  private readonly out = new Uint8Array(HISTORY + OUT_STEP);
  private outLen = 0;
  private readPos = 0;
  /** uncompressed offset of out[0] */
  private outBase = 0;
  private pendingLiteral = 0;
  private readonly checkpoints: Checkpoint[] = [];
  private started = false;

  constructor(
    private readonly fh: fs.promises.FileHandle,
    private readonly what: string,
    private readonly start: number,
    private readonly compressedSize: number,
    readonly size: number,
    private readonly checkpointEvery = CHECKPOINT_EVERY,
  ) {
    this.inFileNext = start;
  }

  get position(): number {
    return this.outBase + this.readPos;
  }

  async read(n: number): Promise<Uint8Array> {
    const result = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      if (this.readPos === this.outLen) await this.fill();
      const k = Math.min(n - got, this.outLen - this.readPos);
      result.set(this.out.subarray(this.readPos, this.readPos + k), got);
      this.readPos += k;
      got += k;
    }
    return result;
  }

  async skip(n: number): Promise<void> {
    while (n > 0) {
      if (this.readPos === this.outLen) await this.fill();
      const k = Math.min(n, this.outLen - this.readPos);
      this.readPos += k;
      n -= k;
    }
  }

  async seek(p: number): Promise<void> {
    if (p > this.size) throw new Error(`${this.what}: seek to ${p} beyond the page's ${this.size} bytes`);
    if (!this.started) await this.begin();
    if (p >= this.position) return this.skip(p - this.position);
    if (p >= this.outBase) {
      this.readPos = p - this.outBase; // still in the window
      return;
    }
    let c = this.checkpoints[0];
    for (const k of this.checkpoints) if (k.outAbs <= p) c = k;
    this.inPos = this.inLen = 0;
    this.inFileNext = c.inAbs;
    this.out.set(c.history, 0);
    this.outLen = this.readPos = c.history.length;
    this.outBase = c.outAbs - c.history.length;
    this.pendingLiteral = 0;
    await this.skip(p - c.outAbs);
  }

  private get inAbs(): number {
    return this.inFileNext - this.inLen + this.inPos;
  }

  private get end(): number {
    return this.start + this.compressedSize;
  }

  /** Makes at least min(k, what is left of the range) input bytes available. */
  private async ensureInput(k: number): Promise<void> {
    if (this.inLen - this.inPos >= k || this.inFileNext >= this.end) return;
    this.inBuf.copyWithin(0, this.inPos, this.inLen);
    this.inLen -= this.inPos;
    this.inPos = 0;
    while (this.inLen < k && this.inFileNext < this.end) {
      const want = Math.min(this.inBuf.length - this.inLen, this.end - this.inFileNext);
      const { bytesRead } = await this.fh.read(this.inBuf, this.inLen, want, this.inFileNext);
      if (bytesRead === 0) throw new Error(`${this.what}: unexpected end of file at byte ${this.inFileNext}`);
      this.inLen += bytesRead;
      this.inFileNext += bytesRead;
    }
  }

  /** Reads the preamble (the uncompressed length) and records the first checkpoint. */
  private async begin(): Promise<void> {
    this.started = true;
    await this.ensureInput(5);
    let length = 0;
    for (let shift = 0; ; shift += 7) {
      if (this.inPos >= this.inLen || shift > 28) throw new Error(`${this.what}: corrupt snappy preamble`);
      const c = this.inBuf[this.inPos++];
      length += (c & 0x7f) * 2 ** shift;
      if (!(c & 0x80)) break;
    }
    if (length !== this.size) throw new Error(`${this.what}: snappy data holds ${length} bytes, the page header says ${this.size}`);
    this.checkpoints.push({ inAbs: this.inAbs, outAbs: 0, history: new Uint8Array(0) });
  }

  /** Decodes more output; call only when everything decoded so far has been consumed. */
  private async fill(): Promise<void> {
    if (!this.started) await this.begin();
    if (this.position >= this.size) throw new Error(`${this.what}: read past the end of the page (${this.size} bytes)`);
    const drop = this.outLen - HISTORY;
    if (drop > 0) {
      this.out.copyWithin(0, drop, this.outLen);
      this.outLen -= drop;
      this.readPos -= drop;
      this.outBase += drop;
    }
    const cap = this.out.length;
    while (this.outLen < cap && this.outBase + this.outLen < this.size) {
      if (this.pendingLiteral > 0) {
        await this.ensureInput(1);
        const n = Math.min(this.pendingLiteral, this.inLen - this.inPos, cap - this.outLen);
        if (n <= 0) throw new Error(`${this.what}: snappy data ends inside a literal`);
        this.out.set(this.inBuf.subarray(this.inPos, this.inPos + n), this.outLen);
        this.inPos += n;
        this.outLen += n;
        this.pendingLiteral -= n;
        continue;
      }
      if (cap - this.outLen < 64) break; // a copy is at most 64 bytes; make room first
      this.maybeCheckpoint();
      await this.ensureInput(5);
      if (this.inPos >= this.inLen) throw new Error(`${this.what}: snappy data ends early`);
      this.element();
    }
    if (this.outBase + this.outLen > this.size) throw new Error(`${this.what}: snappy data holds more than ${this.size} bytes`);
  }

  /** Parses one element at inPos: starts a literal, or performs a copy. */
  private element(): void {
    const b = this.inBuf;
    const p = this.inPos;
    const tag = b[p];
    const need = (tag & 3) === 0 ? 1 + Math.max(0, (tag >>> 2) - 59) : [0, 2, 3, 5][tag & 3];
    if (p + need > this.inLen) throw new Error(`${this.what}: snappy data ends inside an element`);
    let length: number;
    let offset: number;
    switch (tag & 3) {
      case 0: {
        let len = tag >>> 2;
        let extra = 0;
        if (len >= 60) {
          extra = len - 59;
          len = 0;
          for (let i = 0; i < extra; i++) len += b[p + 1 + i] * 2 ** (8 * i);
        }
        this.pendingLiteral = len + 1;
        this.inPos = p + 1 + extra;
        return;
      }
      case 1:
        length = ((tag >>> 2) & 7) + 4;
        offset = ((tag >>> 5) << 8) | b[p + 1];
        this.inPos = p + 2;
        break;
      case 2:
        length = (tag >>> 2) + 1;
        offset = b[p + 1] | (b[p + 2] << 8);
        this.inPos = p + 3;
        break;
      default:
        length = (tag >>> 2) + 1;
        offset = (b[p + 1] | (b[p + 2] << 8) | (b[p + 3] << 16)) + b[p + 4] * 2 ** 24;
        this.inPos = p + 5;
    }
    if (offset === 0) throw new Error(`${this.what}: corrupt snappy data (copy with offset 0)`);
    if (offset > this.outLen) {
      if (this.outBase + this.outLen >= offset)
        throw new SnappyWindowError(`${this.what}: snappy copy reaches back ${offset} bytes, beyond the ${HISTORY}-byte window`);
      throw new Error(`${this.what}: corrupt snappy data (copy before the start)`);
    }
    const o = this.out;
    let from = this.outLen - offset;
    for (let i = 0; i < length; i++) o[this.outLen++] = o[from++];
  }

  private maybeCheckpoint(): void {
    const outAbs = this.outBase + this.outLen;
    const last = this.checkpoints[this.checkpoints.length - 1];
    if (outAbs - last.outAbs < this.checkpointEvery) return;
    const keep = Math.min(HISTORY, this.outLen);
    this.checkpoints.push({ inAbs: this.inAbs, outAbs, history: this.out.slice(this.outLen - keep, this.outLen) });
  }
}
