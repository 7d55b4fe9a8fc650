// What the machine offers `--device cuda`, from the addon's cudaProbe() (native/addon/device_binding.cc): the
// driver (dlopen, every build), the CUDA runtime (CUDA builds) and the compiled archs, turned into one verdict
// with a one-line reason. VREFLECT_FAKE_CUDA_PROBE=<file.json> replaces the probe with a recorded one (tests of
// the GPU branches on machines without a GPU).
import * as fs from 'fs';

import { loadAddon } from '../native/addon';
import { archCoverage } from './cuda_arch';

export interface ProbeDevice {
  index: number;
  name: string;
  ccMajor: number;
  ccMinor: number;
  multiprocessors: number;
  memoryBytes: number;
  freeBytes: number | null;
  kernelImage?: { ok: boolean; binaryVersion: number; ptxVersion: number; error?: string };
  /** shared memory one block may opt in to (cudaDevAttrMaxSharedMemoryPerBlockOptin), when the probe read it */
  smemOptinBytes?: number;
  /**
   * the tensor-core attention's tile variants a call runs on this device (VREFLECT_ATTENTION_TILE_FWD / _BWD, or
   * auto: the first of the preference that fits its shared memory); CUDA builds only; error: a bad variable
   */
  attentionTiles?: { forward?: string; backward?: string; error?: string };
}

export interface CudaProbe {
  built: boolean;
  archs: string | null;
  nvccVersion: string | null;
  runtime: { runtimeVersion: number; driverVersion: number; devices: ProbeDevice[]; error?: string } | null;
  driver: { found: boolean; library: string; version: number; devices: ProbeDevice[]; error?: string };
}

export function probeCuda(o: { freeMemory: boolean }): CudaProbe {
  const fake = process.env.VREFLECT_FAKE_CUDA_PROBE;
  if (fake) return JSON.parse(fs.readFileSync(fake, 'utf8')) as CudaProbe;
  return loadAddon().cudaProbe({ freeMemory: o.freeMemory }) as CudaProbe;
}

/** The GPUs as the runtime sees them (CUDA builds), else as the driver lists them. */
export function probedDevices(p: CudaProbe): ProbeDevice[] {
  return p.runtime?.devices.length ? p.runtime.devices : p.driver.devices;
}

/** "12.8" from the driver API's 12080. */
export const cudaVersionString = (v: number) => `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;

export interface CudaVerdict {
  ok: boolean;
  /** one line: why CUDA cannot be used (when !ok) */
  error?: string;
  /** the device a run would use (device 0), when there is one */
  device?: ProbeDevice;
  /** how the build covers that device's arch */
  coverage?: string;
}

/**
 * Checks in the order a user fixes them: driver, GPU, backend built, arch covered (the runtime's own kernel-image
 * check when it ran, else the arch rule), runtime usable.
 */
export function cudaVerdict(p: CudaProbe): CudaVerdict {
  const device = probedDevices(p)[0];
  if (!p.driver.found) return { ok: false, error: p.driver.error ?? 'no NVIDIA driver (libcuda.so.1 not found)' };
  if (!device) return { ok: false, error: p.driver.error ?? p.runtime?.error ?? 'driver found but no GPU' };
  const gpu = `${device.name} (sm_${device.ccMajor}${device.ccMinor})`;
  if (!p.built || !p.archs)
    return { ok: false, device, error: `GPU present (${gpu}) but this build has no CUDA backend: reinstall where nvcc is on PATH (VREFLECT_CUDA=ON npm rebuild)` };
  const cov = archCoverage(p.archs, device.ccMajor, device.ccMinor);
  if (device.kernelImage && !device.kernelImage.ok)
    return { ok: false, device, error: `${gpu}: this build has no kernel image for it (${device.kernelImage.error ?? 'no image'}); compiled archs ${p.archs.replace(/,/g, ';')}: rebuild with CMAKE_CUDA_ARCHITECTURES including ${device.ccMajor}${device.ccMinor}` };
  if (!cov.covered) return { ok: false, device, error: `${cov.how}: rebuild with CMAKE_CUDA_ARCHITECTURES including ${device.ccMajor}${device.ccMinor}` };
  if (p.runtime?.error) return { ok: false, device, error: p.runtime.error };
  return { ok: true, device, coverage: cov.how };
}
