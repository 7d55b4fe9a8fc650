// Upstream's InternVL-style "packing" (method.md §5.2; lvr_sft_dataset_packed.py::PackedDataset.{find_buffer,
// update_buffer, split_buffer, update_buffer_list, __iter__}), for one data worker. It groups samples, it does
// not cut them: a pack is a list of whole samples.
//
// Per incoming sample s (length = tokens):
// - find_buffer: if len(s) >= longSeqThreshold, none; else the FIRST open buffer (the list is kept in
//   descending length order) with n_inst + 1 <= maxInstancesPerPack and len + len(s) <= maxPackedTokens is
//   taken out of the list (allow_overflow = False in the release);
// - the sample is appended to it (or starts a new buffer);
// - split_buffer: one instance: emitted if len >= longSeqThreshold, else kept. Several instances: kept if
//   len < maxPackedTokens and n < maxInstancesPerPack; emitted if len < maxPackedTokens and n == max;
//   otherwise (len >= maxPackedTokens, reachable only when the sum hits the limit exactly) instances are peeled
//   off the right while len >= maxPackedTokens: the longer of (left part, right instance) is emitted, the left
//   part stays when the right one is emitted, else the right one becomes the remaining buffer; the remainder
//   is kept;
// - kept buffers are re-inserted before the first buffer that is strictly shorter;
// - emitted packs are returned in order, then, while more than maxBufferSize buffers are open, the first
//   (longest) is emitted too.
// With the released values (16384 tokens, threshold 4096, 4 instances) every short sample fits the open
// buffer, so the stream is consecutive groups of 4 samples < 4096 tokens, with samples >= 4096 emitted alone
// (Appendix F). A single sample above maxPackedTokens would be truncated upstream (never in the release, whose
// samples stay below ~5.7k tokens); the stream skips such samples (too_long) before they reach the packer.

export interface PackingOptions {
  maxPackedTokens: number;
  longSeqThreshold: number;
  maxInstancesPerPack: number;
  maxBufferSize: number;
}

interface Buffer<T> {
  items: T[];
  len: number;
}

export class Packer<T> {
  private buffers: Buffer<T>[] = [];

  constructor(readonly opts: PackingOptions, private readonly lengthOf: (item: T) => number) {
    const { maxPackedTokens, longSeqThreshold, maxInstancesPerPack, maxBufferSize } = opts;
    for (const [k, v] of Object.entries({ maxPackedTokens, longSeqThreshold, maxInstancesPerPack }))
      if (!Number.isSafeInteger(v) || v < 1) throw new Error(`packing: ${k} must be a positive integer, got ${v}`);
    if (!Number.isSafeInteger(maxBufferSize) || maxBufferSize < 0) throw new Error(`packing: maxBufferSize must be an integer >= 0, got ${maxBufferSize}`);
  }

  /** Adds one sample; returns the packs that become ready (possibly none). */
  push(item: T): T[][] {
    const len = this.lengthOf(item);
    if (len > this.opts.maxPackedTokens) throw new Error(`packing: a ${len}-token sample exceeds the ${this.opts.maxPackedTokens}-token pack limit`);
    const found = this.findBuffer(len);
    const buf: Buffer<T> = found ?? { items: [], len: 0 };
    buf.items.push(item);
    buf.len += len;
    const { ready, kept } = this.split(buf);
    for (const k of kept) this.insert(k);
    const out = ready.map((r) => r.items);
    while (this.buffers.length > this.opts.maxBufferSize) out.push(this.buffers.shift()!.items);
    return out;
  }

  /** Emits every open buffer, longest first (upstream's end-of-data flush). */
  flush(): T[][] {
    const out = this.buffers.map((b) => b.items);
    this.buffers = [];
    return out;
  }

  /** The open buffers in list order (for the resume cursor). */
  open(): T[][] {
    return this.buffers.map((b) => [...b.items]);
  }

  /** Restores open buffers saved by open(), in the same order. */
  restore(buffers: T[][]): void {
    this.buffers = buffers.map((items) => ({ items: [...items], len: items.reduce((a, it) => a + this.lengthOf(it), 0) }));
  }

  private findBuffer(len: number): Buffer<T> | undefined {
    if (len >= this.opts.longSeqThreshold) return undefined;
    const i = this.buffers.findIndex(
      (b) => b.items.length + 1 <= this.opts.maxInstancesPerPack && b.len + len <= this.opts.maxPackedTokens,
    );
    return i < 0 ? undefined : this.buffers.splice(i, 1)[0];
  }

  private split(buf: Buffer<T>): { ready: Buffer<T>[]; kept: Buffer<T>[] } {
    const { maxPackedTokens: max, longSeqThreshold: long, maxInstancesPerPack: maxInst } = this.opts;
    if (buf.items.length === 1) return buf.len >= long ? { ready: [buf], kept: [] } : { ready: [], kept: [buf] };
    if (buf.len < max) return buf.items.length < maxInst ? { ready: [], kept: [buf] } : { ready: [buf], kept: [] };
    const ready: Buffer<T>[] = [];
    let cur = buf;
    while (cur.len >= max) {
      const right = cur.items[cur.items.length - 1];
      const rightLen = this.lengthOf(right);
      const left: Buffer<T> = { items: cur.items.slice(0, -1), len: cur.len - rightLen };
      if (left.len >= rightLen) {
        ready.push(left);
        cur = { items: [right], len: rightLen };
      } else {
        ready.push({ items: [right], len: rightLen });
        cur = left;
      }
    }
    return { ready, kept: [cur] };
  }

  private insert(buf: Buffer<T>): void {
    const i = this.buffers.findIndex((b) => b.len < buf.len);
    if (i < 0) this.buffers.push(buf);
    else this.buffers.splice(i, 0, buf);
  }
}
