// hyparquet is ESM-only. Node >= 20.19 require()s ES modules natively, so the CommonJS build loads it with a
// plain require; the functions below are the only places that touch the package, which keeps the
// workaround for older Node (and the jest mock in test/unit/eval/helpers) in one spot.
import type * as Hyparquet from 'hyparquet';
import type { ColumnDecoder, DataReader, DecodedArray, PageHeader, PageResult } from './hyparquet-internals';

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
