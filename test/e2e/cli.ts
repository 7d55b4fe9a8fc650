// Running the compiled CLI the way users do (a child process of `node bin/vreflect.js`), shared by the e2e tests.
import { spawnSync } from 'child_process';
import * as path from 'path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const BIN = path.join(ROOT, 'bin', 'vreflect.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * `vreflect ...args --log-level <level>` with JSON log lines (VREFLECT_LOG_JSON=1). `env` is laid over this
 * process's environment; a key set to undefined is removed (e.g. a VREFLECT_ADDON or a fake probe the test runner has).
 */
export function runCli(args: string[], opts: { env?: Record<string, string | undefined>; level?: string; timeoutMs?: number } = {}): CliResult {
  const env: NodeJS.ProcessEnv = { ...process.env, VREFLECT_LOG_JSON: '1' };
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const r = spawnSync(process.execPath, [BIN, ...args, '--log-level', opts.level ?? 'warn'], {
    cwd: ROOT, encoding: 'utf8', timeout: opts.timeoutMs ?? 120000, env,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** The run failed with exactly one `vreflect:` line on stderr, matching `pattern`, and no crash. */
export function expectOneLineError(r: CliResult, pattern: RegExp): void {
  expect(r.signal).toBeNull();
  expect(r.code).not.toBe(0);
  const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('vreflect:'));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}
