// JSON Lines: one object per line. A line that does not parse is reported, never fatal, so the loader can
// turn it into an error item.
import * as fs from 'fs';
import * as readline from 'readline';

export type JsonlLine = { line: number; value: Record<string, unknown> } | { line: number; error: string };

export async function* readJsonl(file: string): AsyncGenerator<JsonlLine> {
  const rl = readline.createInterface({ input: fs.createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let line = 0;
  for await (const text of rl) {
    line++;
    if (text.trim() === '') continue;
    try {
      const value = JSON.parse(text);
      if (value === null || typeof value !== 'object' || Array.isArray(value)) yield { line, error: 'is not a JSON object' };
      else yield { line, value };
    } catch (err) {
      yield { line, error: `is not valid JSON (${(err as Error).message})` };
    }
  }
}
