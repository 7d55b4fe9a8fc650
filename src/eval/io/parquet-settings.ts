// Memory thresholds of the parquet reader, in one object so tests can lower them to exercise every path.
export const parquetSettings = {
  /** row groups whose selected columns decode to more than this are streamed page by page */
  streamAbove: 64 * 1024 * 1024,
  /** BYTE_ARRAY pages and dictionaries bigger than this (uncompressed) are streamed value by value, never held */
  lazyPageAbove: 16 * 1024 * 1024,
};
