// `--device cpu|cuda|auto` for infer, eval, train-stage1/2 and bench infer/train. `auto` is the CPU until the
// CUDA model path exists (issue #6). `cuda` runs the availability checks (driver, GPU, backend built, arch) and
// the GPU memory plan, and then - because the model does not run on CUDA yet - stops with one line saying so.
import { availableMemory } from '../train/memory_plan';
import { UserError } from '../util/errors';
import { log } from '../util/log';
import { cudaVerdict, probeCuda } from './cuda_device';
import type { GpuPlan } from './gpu_memory';
import { renderPlan } from './render';

export type DeviceChoice = 'cpu' | 'cuda' | 'auto';

export const DEVICE_OPTION = {
  choices: ['cpu', 'cuda', 'auto'] as const,
  default: 'auto' as const,
  describe: 'compute device; auto = cpu until the CUDA model path exists (issue 6); cuda checks the GPU and the memory plan',
};

/** --optimizer-states of train-stage1/2 and vreflect plan. */
export const OPTIMIZER_STATES_OPTION = {
  choices: ['auto', 'host', 'gpu', 'gpu-8bit'] as const,
  default: 'auto' as const,
  describe: 'where AdamW state lives on a CUDA run: gpu (all fp32 on the GPU), host (fp32 master + moments in pinned host memory, exact), gpu-8bit (8-bit moments, approximate); auto: gpu if it fits, else host',
};

export const CUDA_NOT_YET = 'the CUDA backend has kernels but cannot run the model yet (issue 6); use --device cpu';

/** The capacities a plan is checked against: the GPU's free memory (total when unknown) and this host's memory. */
export interface Capacities {
  gpuCapacity: number;
  hostCapacity: number;
}

/**
 * For --device cuda: throws a one-line UserError - the first failed availability check, the memory plan's
 * refusal, or (all checks passed) that the model cannot run on CUDA yet. `plan` builds the run's plan from the
 * capacities; it runs only once the GPU checks pass.
 */
export function requireCuda(plan: (c: Capacities) => GpuPlan): never {
  const verdict = cudaVerdict(probeCuda({ freeMemory: true }));
  if (!verdict.ok) throw new UserError(`--device cuda: ${verdict.error}`);
  const d = verdict.device!;
  const p = plan({ gpuCapacity: d.freeBytes ?? d.memoryBytes, hostCapacity: availableMemory() });
  log().info({ gpu: d.name, arch: verdict.coverage }, 'CUDA device');
  log().debug('\n' + renderPlan(p));
  if (!p.fits) throw new UserError(`--device cuda: ${p.problem}`);
  log().info({ gpu_bytes: p.gpuBytes, host_bytes: p.hostBytes, gpu_capacity: p.gpuCapacity }, 'GPU memory plan fits');
  throw new UserError(`--device cuda: ${CUDA_NOT_YET}`);
}
