// Runs the native kernel test binary (native/tests, built next to the addon by cmake-js) and fails on any
// failed check. The binary compares every op against fp64 references with flash-attention's tolerance rule
// and prints one PASS/FAIL line per check.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import { addonPath } from '../../src/native/addon';

const BINARY = 'vreflect_native_tests';

// cmake puts the executable either next to the .node (build/Release) or in the build root above it.
function findTestBinary(): string {
  const addonDir = path.dirname(addonPath());
  const candidates = [path.join(addonDir, BINARY), path.join(path.dirname(addonDir), BINARY)];
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) {
    throw new Error(`${BINARY} not found (looked in ${candidates.join(', ')}); rebuild with cmake-js compile`);
  }
  return found;
}

describe('native kernels', () => {
  it('pass every check of the native test binary', () => {
    const bin = findTestBinary();
    const res = spawnSync(bin, [], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
    const out = `${res.stdout ?? ''}${res.stderr ?? ''}`;
    const failures = out.split('\n').filter((l) => l.startsWith('FAIL'));
    const summary = out.split('\n').find((l) => /\d+ passed, \d+ failed/.test(l));
    if (res.error) throw new Error(`${BINARY} could not run: ${res.error.message}`);
    expect({ status: res.status, signal: res.signal, failures }).toEqual({ status: 0, signal: null, failures: [] });
    expect(summary).toMatch(/^\d+ passed, 0 failed$/);
  });
});
