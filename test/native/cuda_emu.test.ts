// Runs the CUDA kernel tests on the CPU emulator: the .cu kernels in native/cuda/kernels compiled as C++ against
// native/cuda_emu, each compared with the CPU backend / fp64 references by the flash-attention tolerance rule
// (target vreflect_cuda_emu_tests, built by cmake-js next to the addon). Fails on any failed check, crash or
// emulator abort (deadlock, bad warp mask). When the build found no CUDA headers, CMake leaves a
// `vreflect_cuda_emu_tests.skipped` marker instead of the binary and this test says so and passes.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import { addonPath } from '../../src/native/addon';

const BINARY = 'vreflect_cuda_emu_tests';

type Located = { binary: string } | { skipped: string };

// cmake puts executables either next to the .node (build/Release) or in the build root above it.
function locate(): Located {
  const addonDir = path.dirname(addonPath());
  const dirs = [addonDir, path.dirname(addonDir)];
  for (const dir of dirs) {
    const bin = path.join(dir, BINARY);
    if (fs.existsSync(bin)) return { binary: bin };
  }
  for (const dir of dirs) {
    const marker = path.join(dir, `${BINARY}.skipped`);
    if (fs.existsSync(marker)) return { skipped: fs.readFileSync(marker, 'utf8').trim() };
  }
  throw new Error(`${BINARY} not found (looked in ${dirs.join(', ')}); rebuild with cmake-js compile`);
}

describe('CUDA kernels on the CPU emulator', () => {
  it('pass every check of the emulated kernel test binary', () => {
    const found = locate();
    if ('skipped' in found) {
      console.warn(`CUDA emulator tests skipped: ${found.skipped}`);
      return;
    }
    const res = spawnSync(found.binary, [], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
    if (res.error) throw new Error(`${BINARY} could not run: ${res.error.message}`);
    const out = `${res.stdout ?? ''}${res.stderr ?? ''}`;
    const lines = out.split('\n');
    const failures = lines.filter((l) => l.startsWith('FAIL') || l.startsWith('cuda_emu:'));
    const summary = lines.find((l) => /^\d+ passed, \d+ failed$/.test(l));
    expect({ status: res.status, signal: res.signal, failures }).toEqual({ status: 0, signal: null, failures: [] });
    expect(summary).toMatch(/^\d+ passed, 0 failed$/);
    expect(Number(summary?.split(' ')[0])).toBeGreaterThan(0);
  });
});
