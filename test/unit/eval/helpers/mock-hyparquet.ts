// Import this first in any test that reads parquet: it routes hyparquet (ESM-only) through ./esm.
jest.mock('hyparquet', () => require('./esm').loadEsm('hyparquet'));
jest.mock('hyparquet/src/column.js', () => require('./esm').loadEsm('hyparquet/src/column.js'));
jest.mock('hyparquet/src/convert.js', () => require('./esm').loadEsm('hyparquet/src/convert.js'));
jest.mock('hyparquet/src/datapage.js', () => require('./esm').loadEsm('hyparquet/src/datapage.js'));
jest.mock('hyparquet/src/encoding.js', () => require('./esm').loadEsm('hyparquet/src/encoding.js'));
export {};
