// Types of hyparquet's page-level internals that its public typings do not export (hyparquet 1.31.5,
// src/types.d.ts). Kept next to the one module that uses them.
import type { CompressionCodec, Compressors, DataPageHeader, DataReader, DecodedArray, PageHeader, ParquetType, SchemaElement, SchemaTree } from 'hyparquet';

export type { CompressionCodec, Compressors, DataPageHeader, DataReader, DecodedArray, PageHeader };

/** What readDataPage / readDataPageV2 return: levels, and the non-null values (dictionary indices when dictionary-encoded). */
export interface DataPage {
  definitionLevels: number[];
  repetitionLevels: number[];
  dataPage: DecodedArray;
}

export interface ColumnDecoder {
  pathInSchema: string[];
  type: ParquetType;
  element: SchemaElement;
  schemaPath: SchemaTree[];
  codec: CompressionCodec;
  parsers: Record<string, unknown>;
  compressors?: Compressors;
  utf8?: boolean;
}

export interface PageResult {
  skipped: number;
  data?: DecodedArray;
}
