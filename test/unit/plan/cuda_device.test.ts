// The --device cuda verdict and doctor's CUDA section from recorded probes (test/fixtures/cuda), plus the real
// probe on this machine, which must answer (not crash) with or without a driver.
import * as fs from 'fs';
import * as path from 'path';

import { cudaDoctor, cudaLines } from '../../../src/cli/commands/doctor';
import { CudaProbe, cudaVerdict, probeCuda, probedDevices } from '../../../src/plan/cuda_device';

const FIX = path.resolve(__dirname, '..', '..', 'fixtures', 'cuda');
const probe = (name: string): CudaProbe => JSON.parse(fs.readFileSync(path.join(FIX, name), 'utf8'));

describe('cudaVerdict', () => {
  test('H100 with the backend built is ready, covered by sm_90 SASS', () => {
    const v = cudaVerdict(probe('h100_built.json'));
    expect(v).toMatchObject({ ok: true, coverage: 'sm_90 SASS' });
    expect(v.device?.name).toBe('NVIDIA H100 80GB HBM3');
  });
  test.each([
    ['h100_not_built.json', /^GPU present \(NVIDIA H100 80GB HBM3 \(sm_90\)\) but this build has no CUDA backend/],
    ['v100_built.json', /Tesla V100-SXM2-32GB \(sm_70\): this build has no kernel image for it .*compiled archs 80;90/],
    ['old_driver_built.json', /driver \(CUDA 12\.8\) is older than the CUDA runtime this build links \(13\.0\)/],
    ['no_gpu_built.json', /^driver found but no GPU$/],
  ])('%s', (file, re) => {
    const v = cudaVerdict(probe(file));
    expect(v.ok).toBe(false);
    expect(v.error).toMatch(re);
    expect(v.error).not.toMatch(/\n/);
  });
  test('no driver', () => {
    const v = cudaVerdict({ built: false, archs: null, nvccVersion: null, runtime: null, driver: { found: false, library: 'libcuda.so.1', version: 0, devices: [], error: 'no NVIDIA driver (libcuda.so.1 not found)' } });
    expect(v).toEqual({ ok: false, error: 'no NVIDIA driver (libcuda.so.1 not found)' });
  });
});

describe('doctor CUDA section', () => {
  test('H100: devices with name, compute capability, memory and free bytes', () => {
    const d = cudaDoctor(probe('h100_built.json'));
    expect(d).toMatchObject({ built: true, archs: '80;90', runtime: 'cudart 13.0 static (linked at build time)', ready: true, driver: { found: true, version: '13.0' } });
    expect(d.devices).toEqual([
      { index: 0, name: 'NVIDIA H100 80GB HBM3', compute_capability: '9.0', memory_bytes: 85520809984, free_bytes: 84929413120, multiprocessors: 132, arch_coverage: 'sm_90 SASS', smem_optin_bytes: null, attention_tiles: null },
    ]);
    expect(d.cublaslt.found).toBe(false);
    expect(d.error).toBeUndefined();
  });
  // Probes recorded before the addon reported them lack smemOptinBytes / attentionTiles (null above); a build that
  // has them: the A10G (sm_86, 99 KiB per block) as such a build reports it.
  test('shared memory per block and the attention tiles that run on each GPU', () => {
    const p = probe('a10g_built.json');
    const dev = { ...probedDevices(p)[0], smemOptinBytes: 99 * 1024, attentionTiles: { forward: '64x64w4', backward: '64x32w4d' } };
    const d = cudaDoctor({ ...p, runtime: { ...p.runtime!, devices: [dev] } });
    expect(d.devices[0]).toMatchObject({ smem_optin_bytes: 101376, attention_tiles: { forward: '64x64w4', backward: '64x32w4d' } });
    expect(cudaLines(d).join('\n')).toContain('attention tiles (99 KiB shared memory per block): forward 64x64w4, backward 64x32w4d');
    const bad = { ...dev, attentionTiles: { error: 'VREFLECT_ATTENTION_TILE_BWD=9x9 is not one of auto, 64x64w4' } };
    const e = cudaDoctor({ ...p, runtime: { ...p.runtime!, devices: [bad] } });
    expect(e.devices[0].attention_tiles).toEqual({ error: 'VREFLECT_ATTENTION_TILE_BWD=9x9 is not one of auto, 64x64w4' });
    expect(cudaLines(e).join('\n')).toContain('attention tiles (99 KiB shared memory per block): VREFLECT_ATTENTION_TILE_BWD=9x9 is not one of');
  });
  test('not built: the GPU is still listed from the driver probe', () => {
    const d = cudaDoctor(probe('h100_not_built.json'));
    expect(d.built).toBe(false);
    expect(d.devices[0].compute_capability).toBe('9.0');
    expect(d.cublaslt).toEqual({ found: false, reason: 'CUDA backend not built' });
    expect(d.error).toMatch(/no CUDA backend/);
  });
});

test('the real probe answers on this machine', () => {
  const p = probeCuda({ freeMemory: false });
  expect(typeof p.built).toBe('boolean');
  expect(typeof p.driver.found).toBe('boolean');
  if (!p.driver.found) expect(p.driver.error).toBe('no NVIDIA driver (libcuda.so.1 not found)');
  if (p.built) expect(p.archs).toMatch(/^\d+/);
});
