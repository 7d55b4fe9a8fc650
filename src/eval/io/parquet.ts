// Streams rows out of a parquet file with bounded memory, whatever the writer chose for row-group size.
// Small row groups are read whole with hyparquet; a row group too big to hold (HR-Bench 8K may be one
// 2.8 GB row group, BLINK's are 100 rows of images) is read page by page (./parquet-pages). That works for
// flat columns and for structs of flat fields (HF Image {bytes, path}); lists and deeper nesting are read
// whole (onLargeNestedGroup reports it). Binary columns stay Uint8Array (utf8: false); columns annotated
// as strings come back as strings. A null struct comes back undefined and a null field null, as hyparquet
// gives them.
import * as fs from 'fs';
import * as zlib from 'zlib';
import type { AsyncBuffer, Compressors, FileMetaData, SchemaTree } from 'hyparquet';

import { hyparquet } from './hyparquet';
import { LeafColumnCursor, Slot } from './parquet-pages';
import { parquetSettings } from './parquet-settings';

export { parquetSettings };

/** Decompressors beyond hyparquet's built-in snappy, from node's zlib. */
export const COMPRESSORS: Compressors = {
  GZIP: (input) => new Uint8Array(zlib.gunzipSync(input)),
  BROTLI: (input) => new Uint8Array(zlib.brotliDecompressSync(input)),
  ...((zlib as unknown as { zstdDecompressSync?: (b: Uint8Array) => Buffer }).zstdDecompressSync
    ? { ZSTD: (input: Uint8Array) => new Uint8Array((zlib as any).zstdDecompressSync(input)) }
    : {}),
};

export interface RowOptions {
  /** rows for which this returns false come back as null and, where possible, are never decoded */
  want?: (rowIndex: number) => boolean;
  /** called once per row group that is read whole although it is large (lists and deeper nesting cannot be streamed) */
  onLargeNestedGroup?: (info: { rowGroup: number; bytes: number }) => void;
}

export interface ParquetRow {
  index: number;
  row: Record<string, unknown> | null;
}

/** A file handle, its footer and schema. Close it when done (the row iterator does not own it). */
export class ParquetFile {
  private constructor(
    readonly file: string,
    private readonly fh: fs.promises.FileHandle,
    readonly buffer: AsyncBuffer,
    readonly metadata: FileMetaData,
    readonly schema: SchemaTree,
  ) {}

  static async open(file: string): Promise<ParquetFile> {
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(file, 'r');
    } catch (err) {
      throw new Error(`cannot open ${file}: ${(err as Error).message}`);
    }
    try {
      const { size } = await fh.stat();
      const buffer: AsyncBuffer = {
        byteLength: size,
        slice: (start: number, end?: number) => readSlice(fh, start, end ?? size),
      };
      const hp = hyparquet();
      const metadata = await hp.parquetMetadataAsync(buffer);
      return new ParquetFile(file, fh, buffer, metadata, hp.parquetSchema(metadata));
    } catch (err) {
      await fh.close();
      throw new Error(`${file} is not a readable parquet file: ${(err as Error).message}`);
    }
  }

  get rowCount(): number {
    return Number(this.metadata.num_rows);
  }

  get columnNames(): string[] {
    return this.schema.children.map((c) => c.element.name);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }

  /** Rows in file order with the given top-level columns; unwanted rows yield `row: null`. */
  async *rows(columns: string[], opts: RowOptions = {}): AsyncGenerator<ParquetRow> {
    const missing = columns.filter((c) => !this.columnNames.includes(c));
    if (missing.length) throw new Error(`${this.file} has no column ${missing.map((m) => JSON.stringify(m)).join(', ')}`);
    const want = opts.want ?? (() => true);
    let groupStart = 0;
    for (let g = 0; g < this.metadata.row_groups.length; g++) {
      const group = this.metadata.row_groups[g];
      const groupRows = Number(group.num_rows);
      const groupEnd = groupStart + groupRows;
      let anyWanted = false;
      for (let r = groupStart; r < groupEnd && !anyWanted; r++) anyWanted = want(r);
      if (!anyWanted) {
        for (let r = groupStart; r < groupEnd; r++) yield { index: r, row: null };
      } else if (this.groupBytes(g, columns) > parquetSettings.streamAbove && columns.every((c) => this.isStreamable(c))) {
        yield* this.streamGroup(g, groupStart, columns, want);
      } else {
        if (this.groupBytes(g, columns) > parquetSettings.streamAbove) opts.onLargeNestedGroup?.({ rowGroup: g, bytes: this.groupBytes(g, columns) });
        const rows = (await hyparquet().parquetReadObjects({
          file: this.buffer,
          metadata: this.metadata,
          columns,
          rowStart: groupStart,
          rowEnd: groupEnd,
          utf8: false,
          compressors: COMPRESSORS,
        })) as Record<string, unknown>[];
        for (let i = 0; i < rows.length; i++) yield { index: groupStart + i, row: want(groupStart + i) ? rows[i] : null };
      }
      groupStart = groupEnd;
    }
  }

  /** A flat column, or a struct whose fields are all flat: one value per leaf and row, no repetition. */
  private isStreamable(column: string): boolean {
    const node = this.node(column);
    const plain = (n: SchemaTree) => n.element.repetition_type !== 'REPEATED' && !n.element.converted_type?.startsWith('MAP') && n.element.converted_type !== 'LIST';
    if (!node || !plain(node)) return false;
    return node.children.every((leaf) => plain(leaf) && leaf.children.length === 0);
  }

  private node(column: string): SchemaTree | undefined {
    return this.schema.children.find((c) => c.element.name === column);
  }

  /** Decoded size of the chunks of `columns` in row group g (what reading it whole would hold). */
  private groupBytes(g: number, columns: string[]): number {
    let bytes = 0;
    for (const chunk of this.metadata.row_groups[g].columns) {
      const meta = chunk.meta_data;
      if (meta && columns.includes(meta.path_in_schema[0])) bytes += Number(meta.total_uncompressed_size);
    }
    return bytes;
  }

  private async *streamGroup(g: number, groupStart: number, columns: string[], want: (row: number) => boolean): AsyncGenerator<ParquetRow> {
    const readers = columns.map((name) => this.columnReader(g, groupStart, name, want));
    const groupRows = Number(this.metadata.row_groups[g].num_rows);
    for (let i = 0; i < groupRows; i++) {
      const index = groupStart + i;
      const wanted = want(index);
      const values: unknown[] = [];
      for (const read of readers) values.push(await read(wanted));
      if (!wanted) {
        yield { index, row: null };
        continue;
      }
      const row: Record<string, unknown> = {};
      columns.forEach((name, k) => (row[name] = values[k]));
      yield { index, row };
    }
  }

  /** Per row: the column's value (a struct assembled from its fields' cursors). */
  private columnReader(g: number, groupStart: number, name: string, want: (row: number) => boolean): (wanted: boolean) => Promise<unknown> {
    const node = this.node(name)!;
    const cursor = (path: string[], schemaPath: SchemaTree[]) => {
      const chunk = this.metadata.row_groups[g].columns.find((c) => c.meta_data?.path_in_schema.join('\u0000') === path.join('\u0000'));
      if (!chunk?.meta_data) throw new Error(`${this.file}: row group ${g} has no column chunk for ${path.join('.')}`);
      return new LeafColumnCursor(this.fh, this.file, chunk.meta_data, schemaPath, groupStart, want, COMPRESSORS);
    };
    const valueOf = (slot: Slot, maxDef: number) => (slot.def === maxDef ? slot.value : null);
    if (node.children.length === 0) {
      const leaf = cursor([name], [this.schema, node]);
      return async (wanted) => {
        const slot = await leaf.next(wanted);
        return slot && valueOf(slot, leaf.maxDef);
      };
    }
    const structDef = node.element.repetition_type === 'REQUIRED' ? 0 : 1;
    const fields = node.children.map((leaf) => ({ name: leaf.element.name, cursor: cursor([name, leaf.element.name], [this.schema, node, leaf]) }));
    return async (wanted) => {
      const slots: (Slot | undefined)[] = [];
      for (const f of fields) slots.push(await f.cursor.next(wanted));
      if (!wanted || slots.length === 0) return undefined;
      if (slots[0]!.def < structDef) return undefined; // the struct itself is null
      const value: Record<string, unknown> = {};
      fields.forEach((f, k) => (value[f.name] = valueOf(slots[k]!, f.cursor.maxDef)));
      return value;
    };
  }
}

async function readSlice(fh: fs.promises.FileHandle, start: number, end: number): Promise<ArrayBuffer> {
  const length = Math.max(0, end - start);
  const out = Buffer.allocUnsafeSlow(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(out, done, length - done, start + done);
    if (bytesRead === 0) throw new Error(`unexpected end of file at byte ${start + done}`);
    done += bytesRead;
  }
  // allocUnsafeSlow gives the buffer its own ArrayBuffer: hand it over without a copy.
  if (out.byteOffset === 0 && out.buffer.byteLength === length) return out.buffer as ArrayBuffer;
  return out.buffer.slice(out.byteOffset, out.byteOffset + length) as ArrayBuffer;
}
