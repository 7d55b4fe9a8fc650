// Runs one measurement in its own process and reads the JSON line it prints last. A process per measurement
// gives each its own peak RSS (VmHWM only grows) and keeps one engine's memory from another's figures.
import { spawn } from 'child_process';

export interface ChildOptions {
  label: string;
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  /** Called with each stderr line (progress of the child); default: dropped. */
  onStderrLine?: (line: string) => void;
}

/** The last line of `stdout` that parses as a JSON object, or undefined. */
export function lastJsonLine(stdout: string): Record<string, any> | undefined {
  const lines = stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  for (let i = lines.length - 1; i >= 0; i--) {
    if (!lines[i].startsWith('{')) continue;
    try {
      const v = JSON.parse(lines[i]);
      if (v && typeof v === 'object' && !Array.isArray(v)) return v;
    } catch {
      // not JSON: keep looking upwards
    }
  }
  return undefined;
}

/**
 * Spawns `cmd args`, waits for it, and returns its last JSON line. Rejects with a one-line error naming the
 * child when it cannot start, times out, exits non-zero without a JSON answer, or answers {"ok": false}.
 */
export function runJsonChild(cmd: string, args: string[], opts: ChildOptions): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let errTail: string[] = [];
    let partial = '';
    let settled = false;
    const finish = (err: Error | undefined, value?: Record<string, any>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(new Error(`${opts.label}: no answer within ${Math.round(opts.timeoutMs / 1000)} s (killed)`));
    }, opts.timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => {
      const lines = (partial + d.toString('utf8')).split(/\r?\n|\r/);
      partial = lines.pop() ?? '';
      for (const l of lines) {
        if (!l.trim()) continue;
        errTail = [...errTail.slice(-19), l];
        opts.onStderrLine?.(l);
      }
    });
    child.on('error', (e) => finish(new Error(`${opts.label}: cannot start ${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (partial.trim()) errTail.push(partial);
      const answer = lastJsonLine(stdout);
      if (answer && answer.ok === false) return finish(new Error(`${opts.label}: ${answer.error ?? 'failed'}`));
      if (answer && code === 0) return finish(undefined, answer);
      const why = signal ? `killed by ${signal}` : `exit code ${code}`;
      const last = errTail.filter((l) => /error|Error|failed/.test(l)).pop() ?? errTail[errTail.length - 1] ?? 'no output';
      finish(new Error(`${opts.label}: ${why}: ${last.trim()}`));
    });
  });
}
