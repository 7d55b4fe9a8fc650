// A dictionary page of BYTE_ARRAY values read entry by entry instead of whole. pyarrow puts up to 1024
// distinct values in the dictionary before it checks the size limit, so an 800-row HR-Bench image column is
// ONE dictionary page as large as the file. Rows usually reference entries in order (entry k first appears
// at row k), which is a forward scan; an earlier entry (the same image in a later row) seeks back through the
// stream's checkpoints. Entry offsets are learned on the way, and the last few entries are kept.
import { PageByteSource, readPlainByteArray, skipPlainByteArray } from './page-stream';

const KEEP_ENTRIES = 4;

export class LazyDictionary {
  /** offsets[k] = uncompressed offset of entry k, known for k < offsets.length */
  private readonly offsets: number[] = [0];
  private readonly recent = new Map<number, unknown>();

  constructor(
    private readonly src: PageByteSource,
    readonly count: number,
    private readonly what: string,
    private readonly convert: (bytes: Uint8Array) => unknown,
  ) {}

  async get(k: number): Promise<unknown> {
    if (!Number.isInteger(k) || k < 0 || k >= this.count) throw new Error(`${this.what}: dictionary index ${k} out of range (${this.count} entries)`);
    if (this.recent.has(k)) return this.recent.get(k);
    const known = Math.min(k, this.offsets.length - 1);
    await this.src.seek(this.offsets[known]);
    for (let i = known; i < k; i++) {
      await skipPlainByteArray(this.src, this.what);
      if (i + 1 === this.offsets.length) this.offsets.push(this.src.position);
    }
    const value = this.convert(await readPlainByteArray(this.src, this.what));
    if (k + 1 === this.offsets.length && k + 1 < this.count) this.offsets.push(this.src.position);
    this.recent.set(k, value);
    if (this.recent.size > KEEP_ENTRIES) this.recent.delete(this.recent.keys().next().value as number);
    return value;
  }
}
