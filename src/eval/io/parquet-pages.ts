// Reads one flat column chunk page by page, so memory holds one page (plus the dictionary) however large
// the row group is. Pages whose rows are all unwanted are skipped without being read or decompressed.
// The page decoding itself is hyparquet's (parquetHeader, readPage, convert).
import type * as fs from 'fs';
import type { ColumnMetaData, Compressors, SchemaTree } from 'hyparquet';

import { hyparquetColumn, hyparquetConvert } from './hyparquet';
import type { ColumnDecoder, DecodedArray } from './hyparquet-internals';

const FIRST_HEADER_WINDOW = 64 * 1024;
const MAX_HEADER_WINDOW = 64 * 1024 * 1024; // page headers carry min/max statistics, usually truncated

export class FlatColumnCursor {
  private pos: number;
  private readonly end: number;
  private readonly decoder: ColumnDecoder;
  private dictionary: DecodedArray | undefined;
  private page: DecodedArray | null = null;
  private pageIndex = 0;
  /** rows of the current page not yet handed out when the page body was skipped */
  private skippedLeft = 0;
  private row: number;

  constructor(
    private readonly fh: fs.promises.FileHandle,
    private readonly file: string,
    meta: ColumnMetaData,
    schemaPath: SchemaTree[],
    groupStart: number,
    private readonly want: (row: number) => boolean,
    compressors: Compressors,
  ) {
    this.pos = Number(meta.dictionary_page_offset || meta.data_page_offset);
    this.end = this.pos + Number(meta.total_compressed_size);
    this.row = groupStart;
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

  /** The next row's value (undefined for a row the caller does not want, when its page was skipped). */
  async next(): Promise<unknown> {
    for (;;) {
      if (this.skippedLeft > 0) {
        this.skippedLeft--;
        this.row++;
        return undefined;
      }
      if (this.page && this.pageIndex < this.page.length) {
        this.row++;
        return this.page[this.pageIndex++];
      }
      await this.readNextPage();
    }
  }

  private async readNextPage(): Promise<void> {
    if (this.pos >= this.end) throw new Error(`${this.file}: column ${this.decoder.pathInSchema.join('.')} ends before its row group does`);
    const { header, headerLength, window } = await this.readHeader();
    const bodyStart = this.pos + headerLength;
    const size = header.compressed_page_size;
    this.page = null;
    this.pageIndex = 0;
    if (header.type === 'DATA_PAGE' || header.type === 'DATA_PAGE_V2') {
      const rows = header.type === 'DATA_PAGE' ? header.data_page_header!.num_values : header.data_page_header_v2!.num_rows;
      let needed = false;
      for (let r = this.row; r < this.row + rows && !needed; r++) needed = this.want(r);
      if (!needed) {
        this.pos = bodyStart + size;
        this.skippedLeft = rows;
        return;
      }
    } else if (header.type !== 'DICTIONARY_PAGE') {
      this.pos = bodyStart + size; // index pages and the like carry no rows
      return;
    }
    const body =
      window.byteLength >= headerLength + size
        ? new Uint8Array(window.buffer, window.byteOffset + headerLength, size)
        : await this.readBytes(bodyStart, size);
    this.pos = bodyStart + size;
    const col = hyparquetColumn();
    const reader = { view: new DataView(body.buffer, body.byteOffset, body.byteLength), offset: 0 };
    const result = col.readPage(reader, header, this.decoder, this.dictionary, undefined, 0);
    if (header.type === 'DICTIONARY_PAGE') {
      if (result.data) this.dictionary = hyparquetConvert().convert(result.data, this.decoder);
    } else {
      this.page = result.data ?? [];
    }
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
