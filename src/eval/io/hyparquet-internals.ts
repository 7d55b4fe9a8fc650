// Types of hyparquet's page-level internals that its public typings do not export (hyparquet 1.31.5,
// src/types.d.ts). Kept next to the one module that uses them.
import type { CompressionCodec, Compressors, DataReader, DecodedArray, PageHeader, ParquetType, SchemaElement, SchemaTree } from 'hyparquet';

export type { DataReader, DecodedArray, PageHeader };

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
