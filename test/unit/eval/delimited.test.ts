// The CSV/TSV reader: RFC 4180 quoting (separators, newlines and doubled quotes inside quotes), CRLF, a BOM,
// blank lines, and every chunk boundary (chunk sizes 1..9 bytes split each construct somewhere).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { readDelimited, readRawRecords } from '../../../src/eval/io/delimited';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'csv-'));
const SOURCE =
  '\uFEFFIndex,Question,Options,Correct Answer\r\n' +
  '1,"Is it open, or closed?",(a) Open (b) Closed,(a)\r\n' +
  '2,"She said ""hi""\nthen left",(a) x (b) y,(b)\n' +
  '\n' +
  '3,plain,"",(a)\n' +
  '4,"ends with quote""",last,(b)';
const EXPECTED = [
  ['Index', 'Question', 'Options', 'Correct Answer'],
  ['1', 'Is it open, or closed?', '(a) Open (b) Closed', '(a)'],
  ['2', 'She said "hi"\nthen left', '(a) x (b) y', '(b)'],
  ['3', 'plain', '', '(a)'],
  ['4', 'ends with quote"', 'last', '(b)'],
];
const file = path.join(tmp, 'q.csv');
fs.writeFileSync(file, SOURCE);

async function all(chunk: number): Promise<string[][]> {
  const out: string[][] = [];
  for await (const r of readRawRecords(file, ',', chunk)) out.push(r);
  return out;
}

test.each([1, 2, 3, 4, 5, 6, 7, 8, 9, 1 << 20])('chunk size %i', async (chunk) => {
  const rows = await all(chunk);
  rows[0][0] = rows[0][0].replace(/^\uFEFF/, '');
  expect(rows).toEqual(EXPECTED);
});

test('records by header name; a short record is flagged malformed', async () => {
  const f = path.join(tmp, 'h.tsv');
  fs.writeFileSync(f, 'a\tb\tc\n1\t2\t3\n4\t5\n');
  const recs = [];
  for await (const r of readDelimited(f, '\t')) recs.push(r);
  expect(recs[0]).toEqual({ record: 1, fields: { a: '1', b: '2', c: '3' }, malformed: undefined });
  expect(recs[1].fields).toEqual({ a: '4', b: '5', c: '' });
  expect(recs[1].malformed).toBe('has 2 fields, the header has 3');
});

test('an unclosed quote is an error naming the file', async () => {
  const f = path.join(tmp, 'bad.csv');
  fs.writeFileSync(f, 'a,b\n1,"oops\n');
  const it = readDelimited(f, ',');
  await expect((async () => { for await (const _ of it) void _; })()).rejects.toThrow(`${f}: a quoted field is not closed`);
});
