// <output-dir>/metrics.jsonl: one JSON object per optimizer step, appended and flushed at once, so a crash loses
// at most the step in flight. On resume, lines of steps after the resumed checkpoint are dropped first, so the
// file reads like one uninterrupted run.
import * as fs from 'fs';

export class MetricsLog {
  private fd: number;

  constructor(readonly file: string, resumeFromStep?: number) {
    if (resumeFromStep !== undefined && fs.existsSync(file)) {
      const kept = fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => {
          if (!l.trim()) return false;
          try {
            return (JSON.parse(l) as { step?: number }).step! <= resumeFromStep;
          } catch {
            return false; // a torn last line from a crash
          }
        });
      fs.writeFileSync(file, kept.map((l) => l + '\n').join(''));
    } else if (resumeFromStep === undefined) {
      fs.writeFileSync(file, '');
    }
    this.fd = fs.openSync(file, 'a');
  }

  write(record: Record<string, unknown>): void {
    fs.writeSync(this.fd, JSON.stringify(record) + '\n');
    fs.fsyncSync(this.fd);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
