// Streaming CSV/TSV reader (RFC 4180 quoting, as pandas and Python's csv module write it): quoted fields may
// hold separators, newlines and doubled quotes. Reads chunk by chunk, so a 4.6 GB HR-Bench TSV with
// multi-megabyte base64 fields never sits in memory whole.
import * as fs from 'fs';

export interface DelimitedRecord {
  /** 1-based number of the record after the header */
  record: number;
  /** the header names mapped to this record's fields ('' for missing trailing fields) */
  fields: Record<string, string>;
  /** set when the record has a different field count than the header */
  malformed?: string;
}

/** Yields raw records (arrays of fields). */
export async function* readRawRecords(file: string, separator: string, chunkSize = 1 << 20): AsyncGenerator<string[]> {
  const stream = fs.createReadStream(file, { encoding: 'utf8', highWaterMark: chunkSize });
  let buf = '';
  let pos = 0;
  let record: string[] = [];
  let field = '';
  let inQuotes = false;
  let fieldStarted = false;
  let sawAnything = false;
  const flushRecord = function* (): Generator<string[]> {
    record.push(field);
    field = '';
    fieldStarted = false;
    const r = record;
    record = [];
    if (!(r.length === 1 && r[0] === '')) yield r; // blank lines carry no record
  };
  for await (const chunk of stream as AsyncIterable<string>) {
    buf = buf.slice(pos) + chunk;
    pos = 0;
    sawAnything = true;
    while (pos < buf.length) {
      if (inQuotes) {
        const q = buf.indexOf('"', pos);
        if (q < 0) {
          field += buf.slice(pos);
          pos = buf.length;
          break;
        }
        if (q + 1 >= buf.length) {
          // a quote at the chunk end: it may be the first of a doubled pair; decide with the next chunk
          field += buf.slice(pos, q);
          pos = q;
          break;
        }
        field += buf.slice(pos, q);
        if (buf[q + 1] === '"') {
          field += '"';
          pos = q + 2;
        } else {
          inQuotes = false;
          pos = q + 1;
        }
        continue;
      }
      const c = buf[pos];
      if (c === '"' && !fieldStarted) {
        inQuotes = true;
        fieldStarted = true;
        pos++;
        continue;
      }
      if (c === separator) {
        record.push(field);
        field = '';
        fieldStarted = false;
        pos++;
        continue;
      }
      if (c === '\n' || c === '\r') {
        if (c === '\r' && pos + 1 >= buf.length) break; // maybe \r\n split across chunks
        pos += c === '\r' && buf[pos + 1] === '\n' ? 2 : 1;
        yield* flushRecord();
        continue;
      }
      // plain run up to the next special character
      let next = buf.length;
      for (const s of [separator, '\n', '\r']) {
        const k = buf.indexOf(s, pos);
        if (k >= 0 && k < next) next = k;
      }
      field += buf.slice(pos, next);
      fieldStarted = true;
      pos = next;
    }
  }
  if (pos < buf.length) {
    // leftovers held back for a possible pair: a lone quote or a lone \r
    const rest = buf.slice(pos);
    if (inQuotes && rest === '"') inQuotes = false;
  }
  if (inQuotes) throw new Error(`${file}: a quoted field is not closed before the end of the file`);
  if (sawAnything && (field !== '' || record.length > 0 || fieldStarted)) yield* flushRecord();
}

/** Records with the first line as header. */
export async function* readDelimited(file: string, separator: string): AsyncGenerator<DelimitedRecord> {
  let header: string[] | null = null;
  let n = 0;
  for await (const raw of readRawRecords(file, separator)) {
    if (!header) {
      header = raw.map((h, i) => (i === 0 ? h.replace(/^\uFEFF/, '') : h).trim());
      continue;
    }
    n++;
    const fields: Record<string, string> = {};
    header.forEach((h, i) => (fields[h] = raw[i] ?? ''));
    const malformed = raw.length !== header.length ? `has ${raw.length} fields, the header has ${header.length}` : undefined;
    yield { record: n, fields, malformed };
  }
  if (!header) throw new Error(`${file} is empty (no header line)`);
}

/** The header names of a delimited file (reads only the first record). */
export async function readHeader(file: string, separator: string): Promise<string[]> {
  for await (const raw of readRawRecords(file, separator)) return raw.map((h, i) => (i === 0 ? h.replace(/^\uFEFF/, '') : h).trim());
  throw new Error(`${file} is empty (no header line)`);
}
