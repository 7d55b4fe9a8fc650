// Reads one leaf column chunk page by page, row by row, so memory holds one page (plus the dictionary)
// however large the row group is. A leaf is a top-level column or a field of a top-level struct that is not
// repeated (HF Image {bytes, path}): either way it has one value per row and no repetition levels.
// Pages whose rows are all unwanted are skipped without being read or decompressed. Pages and dictionaries
// of BYTE_ARRAY values bigger than parquetSettings.lazyPageAbove (16 MiB) are not held at all but streamed
// (./page-stream): pyarrow writes an 800-row column of images as one page as big as the column.
// Page decoding is hyparquet's (parquetHeader, readDataPage, readPlain via readPage, convert).
import type * as fs from 'fs';
import type { ColumnMetaData, Compressors, SchemaTree } from 'hyparquet';

import { hyparquetColumn, hyparquetConvert, hyparquetDatapage, hyparquetEncoding } from './hyparquet';
import type { ColumnDecoder, DecodedArray, PageHeader } from './hyparquet-internals';
import { LazyDictionary } from './lazy-dictionary';
import { PageByteSource, openPageStream, readPlainByteArray, skipPlainByteArray } from './page-stream';
import { parquetSettings } from './parquet-settings';

const FIRST_HEADER_WINDOW = 64 * 1024;
const MAX_HEADER_WINDOW = 64 * 1024 * 1024; // page headers carry min/max statistics, usually truncated

/** One row of a leaf: its definition level, and its value when the level is the maximum. */
export interface Slot {
  def: number;
  value: unknown;
}

interface PageRows {
  /** rows not yet handed out */
  left: number;
  next(wanted: boolean): Promise<Slot | undefined>;
}

export class LeafColumnCursor {
  private pos: number;
  private readonly end: number;
  private readonly decoder: ColumnDecoder;
  readonly maxDef: number;
  private readonly name: string;
  private dictionary: DecodedArray | LazyDictionary | undefined;
  private page: PageRows | null = null;
  /** rows of the current page not yet handed out when the page body was skipped */
  private skippedLeft = 0;
  private row: number;

  constructor(
    private readonly fh: fs.promises.FileHandle,
    private readonly file: string,
    private readonly meta: ColumnMetaData,
    schemaPath: SchemaTree[],
    groupStart: number,
    private readonly want: (row: number) => boolean,
    compressors: Compressors,
  ) {
    this.pos = Number(meta.dictionary_page_offset || meta.data_page_offset);
    this.end = this.pos + Number(meta.total_compressed_size);
    this.row = groupStart;
    this.name = meta.path_in_schema.join('.');
    this.maxDef = schemaPath.slice(1).filter((s) => s.element.repetition_type !== 'REQUIRED').length;
    if (schemaPath.slice(1).some((s) => s.element.repetition_type === 'REPEATED'))
      throw new Error(`${file}: column ${this.name} is repeated and cannot be streamed`);
    this.decoder = {
      pathInSchema: meta.path_in_schema,
      type: meta.type,
      element: schemaPath[schemaPath.length - 1].element,
      schemaPath,
      codec: meta.codec,
      parsers: hyparquetConvert().DEFAULT_PARSERS,
      compressors,
      utf8: false,
    };
  }

  /** The next row; undefined for a row the caller does not want (whose bytes may never be read). */
  async next(wanted: boolean): Promise<Slot | undefined> {
    for (;;) {
      if (this.skippedLeft > 0) {
        this.skippedLeft--;
        this.row++;
        return undefined;
      }
      if (this.page && this.page.left > 0) {
        this.row++;
        return this.page.next(wanted);
      }
      await this.readNextPage();
    }
  }

  private what(): string {
    return `${this.file}: column ${this.name}`;
  }

  private async readNextPage(): Promise<void> {
    if (this.pos >= this.end) throw new Error(`${this.what()} ends before its row group does`);
    const { header, headerLength, window } = await this.readHeader();
    const bodyStart = this.pos + headerLength;
    const size = header.compressed_page_size;
    this.pos = bodyStart + size;
    this.page = null;
    if (header.type === 'DATA_PAGE' || header.type === 'DATA_PAGE_V2') {
      const rows = header.type === 'DATA_PAGE' ? header.data_page_header!.num_values : header.data_page_header_v2!.num_rows;
      let needed = false;
      for (let r = this.row; r < this.row + rows && !needed; r++) needed = this.want(r);
      if (!needed) {
        this.skippedLeft = rows;
        return;
      }
      this.page = (await this.lazyDataPage(header, bodyStart)) ?? this.eagerDataPage(header, await this.body(window, headerLength, bodyStart, size));
      if (this.page.left !== rows) throw new Error(`${this.what()}: page holds ${this.page.left} values for ${rows} rows`);
    } else if (header.type === 'DICTIONARY_PAGE') {
      this.dictionary = this.lazyDictionary(header, bodyStart) ?? this.eagerDictionary(header, await this.body(window, headerLength, bodyStart, size));
    }
    // index pages and the like carry no rows
  }

  private async body(window: Uint8Array, headerLength: number, bodyStart: number, size: number): Promise<Uint8Array> {
    return window.byteLength >= headerLength + size
      ? new Uint8Array(window.buffer, window.byteOffset + headerLength, size)
      : this.readBytes(bodyStart, size);
  }

  private streamable(header: PageHeader): boolean {
    return this.decoder.type === 'BYTE_ARRAY' && header.uncompressed_page_size > parquetSettings.lazyPageAbove;
  }

  private eagerDictionary(header: PageHeader, body: Uint8Array): DecodedArray {
    const reader = { view: new DataView(body.buffer, body.byteOffset, body.byteLength), offset: 0 };
    const result = hyparquetColumn().readPage(reader, header, this.decoder, undefined, undefined, 0);
    return hyparquetConvert().convert(result.data ?? [], this.decoder);
  }

  private lazyDictionary(header: PageHeader, bodyStart: number): LazyDictionary | undefined {
    if (!this.streamable(header)) return undefined;
    const src = openPageStream(this.fh, `${this.what()} dictionary`, this.meta.codec, bodyStart, header.compressed_page_size, header.uncompressed_page_size);
    if (!src) return undefined;
    return new LazyDictionary(src, header.dictionary_page_header!.num_values, `${this.what()} dictionary`, (b) => this.convertOne(b));
  }

  private convertOne(bytes: Uint8Array): unknown {
    return hyparquetConvert().convert([bytes], this.decoder)[0];
  }

  /** Decodes a whole data page: its definition levels and non-null values (dictionary indices if so encoded). */
  private eagerDataPage(header: PageHeader, body: Uint8Array): PageRows {
    const dp = hyparquetDatapage();
    let decoded;
    let encoding: string;
    if (header.type === 'DATA_PAGE') {
      const daph = header.data_page_header!;
      const bytes = dp.decompressPage(body, header.uncompressed_page_size, this.decoder.codec, this.decoder.compressors);
      decoded = dp.readDataPage(bytes, daph, this.decoder);
      encoding = daph.encoding;
    } else {
      decoded = dp.readDataPageV2(body, header, this.decoder);
      encoding = header.data_page_header_v2!.encoding;
    }
    const rows = header.type === 'DATA_PAGE' ? header.data_page_header!.num_values : header.data_page_header_v2!.num_rows;
    const defs = decoded.definitionLevels.length ? decoded.definitionLevels : undefined;
    const byDictionary = encoding.endsWith('_DICTIONARY');
    if (byDictionary && !this.dictionary) throw new Error(`${this.what()}: dictionary-encoded page without a dictionary`);
    const values = byDictionary ? decoded.dataPage : hyparquetConvert().convert(decoded.dataPage, this.decoder);
    const dictionary = this.dictionary;
    const maxDef = this.maxDef;
    let i = 0;
    let v = 0;
    const page: PageRows = {
      left: rows,
      async next(wanted) {
        page.left--;
        const def = defs ? defs[i++] : maxDef;
        if (def !== maxDef) return wanted ? { def, value: null } : undefined;
        const raw = values[v++];
        if (!wanted) return undefined;
        if (!byDictionary) return { def, value: raw };
        const value = dictionary instanceof LazyDictionary ? await dictionary.get(Number(raw)) : dictionary![Number(raw)];
        return { def, value };
      },
    };
    return page;
  }

  /** A PLAIN BYTE_ARRAY page too big to hold: levels read up front, values streamed row by row. */
  private async lazyDataPage(header: PageHeader, bodyStart: number): Promise<PageRows | undefined> {
    if (!this.streamable(header)) return undefined;
    const rows = header.type === 'DATA_PAGE' ? header.data_page_header!.num_values : header.data_page_header_v2!.num_rows;
    const what = `${this.what()} page at byte ${bodyStart}`;
    let src: PageByteSource | undefined;
    let defs: number[] | undefined;
    const width = 32 - Math.clz32(this.maxDef);
    if (header.type === 'DATA_PAGE') {
      const daph = header.data_page_header!;
      if (daph.encoding !== 'PLAIN' || (this.maxDef > 0 && daph.definition_level_encoding !== 'RLE')) return undefined;
      src = openPageStream(this.fh, what, this.meta.codec, bodyStart, header.compressed_page_size, header.uncompressed_page_size);
      if (!src) return undefined;
      if (this.maxDef > 0) {
        const lengthBytes = await src.read(4);
        const length = new DataView(lengthBytes.buffer).getUint32(0, true);
        defs = this.decodeLevels(await src.read(length), width, rows);
      }
    } else {
      const v2 = header.data_page_header_v2!;
      if (v2.encoding !== 'PLAIN' || v2.repetition_levels_byte_length) return undefined;
      const levels = v2.definition_levels_byte_length;
      const valuesSize = header.uncompressed_page_size - levels;
      src =
        v2.is_compressed === false
          ? openPageStream(this.fh, what, 'UNCOMPRESSED', bodyStart + levels, valuesSize, valuesSize)
          : openPageStream(this.fh, what, this.meta.codec, bodyStart + levels, header.compressed_page_size - levels, valuesSize);
      if (!src) return undefined;
      if (this.maxDef > 0) defs = this.decodeLevels(await this.readBytes(bodyStart, levels), width, rows);
    }
    const source = src;
    const maxDef = this.maxDef;
    const convert = (b: Uint8Array) => this.convertOne(b);
    let i = 0;
    const page: PageRows = {
      left: rows,
      async next(wanted) {
        page.left--;
        const def = defs ? defs[i++] : maxDef;
        if (def !== maxDef) return wanted ? { def, value: null } : undefined;
        if (!wanted) {
          await skipPlainByteArray(source, what);
          return undefined;
        }
        return { def, value: convert(await readPlainByteArray(source, what)) };
      },
    };
    return page;
  }

  private decodeLevels(bytes: Uint8Array, width: number, count: number): number[] {
    const out = new Array<number>(count);
    const reader = { view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset: 0 };
    hyparquetEncoding().readRleBitPackedHybrid(reader, width, out, bytes.byteLength);
    return out;
  }

  /** Parses the page header at `pos`, widening the read window until the header fits. */
  private async readHeader() {
    let windowSize = FIRST_HEADER_WINDOW;
    for (;;) {
      const length = Math.min(windowSize, this.end - this.pos);
      const window = await this.readBytes(this.pos, length);
      try {
        const reader = { view: new DataView(window.buffer, window.byteOffset, window.byteLength), offset: 0 };
        const header = hyparquetColumn().parquetHeader(reader);
        if (reader.offset > window.byteLength) throw new RangeError('header runs past the window');
        return { header, headerLength: reader.offset, window };
      } catch (err) {
        if (length >= this.end - this.pos || windowSize >= MAX_HEADER_WINDOW)
          throw new Error(`${this.file}: unreadable page header at byte ${this.pos}: ${(err as Error).message}`);
        windowSize *= 4;
      }
    }
  }

  private async readBytes(start: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.fh.read(out, done, length - done, start + done);
      if (bytesRead === 0) throw new Error(`${this.file}: unexpected end of file at byte ${start + done}`);
      done += bytesRead;
    }
    return out;
  }
}
