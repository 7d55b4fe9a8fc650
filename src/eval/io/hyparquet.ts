// hyparquet is ESM-only. Node >= 20.19 require()s ES modules natively, so the CommonJS build loads it with a
// plain require; the functions below are the only places that touch the package, which keeps the
// workaround for older Node (and the jest mock in test/unit/eval/helpers) in one spot.
import type * as Hyparquet from 'hyparquet';
import type { ColumnDecoder, CompressionCodec, Compressors, DataPage, DataPageHeader, DataReader, DecodedArray, PageHeader, PageResult } from './hyparquet-internals';

export type HyparquetModule = typeof Hyparquet;

/** hyparquet's page-level functions (package subpath hyparquet/src/column.js), used to stream huge row groups. */
export interface HyparquetColumnModule {
  parquetHeader(reader: DataReader): PageHeader;
  readPage(
    reader: DataReader,
    header: PageHeader,
    decoder: ColumnDecoder,
    dictionary: DecodedArray | undefined,
    previousChunk: DecodedArray | undefined,
    pageStart: number,
  ): PageResult;
}

export interface HyparquetConvertModule {
  convert(data: DecodedArray, decoder: ColumnDecoder): DecodedArray;
  DEFAULT_PARSERS: Record<string, unknown>;
}

/** hyparquet's data page decoding (hyparquet/src/datapage.js and encoding.js). */
export interface HyparquetDatapageModule {
  decompressPage(compressed: Uint8Array, uncompressedSize: number, codec: CompressionCodec, compressors: Compressors | undefined): Uint8Array;
  readDataPage(bytes: Uint8Array, header: DataPageHeader, decoder: ColumnDecoder): DataPage;
  readDataPageV2(compressed: Uint8Array, header: PageHeader, decoder: ColumnDecoder): DataPage;
}

export interface HyparquetEncodingModule {
  readRleBitPackedHybrid(reader: DataReader, width: number, output: number[], length?: number): void;
}

function load<T>(id: string): T {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return require(id) as T;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_REQUIRE_ESM')
      throw new Error(`cannot load ${id}: it is an ES module and this Node (${process.version}) cannot require() one; use Node >= 20.19`);
    throw err;
  }
}

export function hyparquet(): HyparquetModule {
  return load<HyparquetModule>('hyparquet');
}

export function hyparquetColumn(): HyparquetColumnModule {
  return load<HyparquetColumnModule>('hyparquet/src/column.js');
}

export function hyparquetConvert(): HyparquetConvertModule {
  return load<HyparquetConvertModule>('hyparquet/src/convert.js');
}

export function hyparquetDatapage(): HyparquetDatapageModule {
  return load<HyparquetDatapageModule>('hyparquet/src/datapage.js');
}

export function hyparquetEncoding(): HyparquetEncodingModule {
  return load<HyparquetEncodingModule>('hyparquet/src/encoding.js');
}
