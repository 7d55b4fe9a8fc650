// `--device cpu|cuda|auto` for infer, eval, train-stage1/2 and bench infer/train. `cuda` runs the availability
// checks (driver, GPU, backend built, arch) and the GPU memory plan; infer, eval and bench infer then run on the
// CUDA model path (native/cuda/model/gpu_session), train-stage1/2 and bench train on the GPU trainer
// (native/cuda/model/gpu_trainer); what has no GPU path (--dtype fp32) stops
// with one line. `auto` picks cuda where those same checks pass (and the run has a GPU path), else the CPU, and logs which
// and why.
import { availableMemory } from '../train/memory_plan';
import { UserError } from '../util/errors';
import { log } from '../util/log';
import { loadAddon } from '../native/addon';
import { cudaVerdict, probeCuda } from './cuda_device';
import type { GpuPlan } from './gpu_memory';
import { renderPlan } from './render';

export type DeviceChoice = 'cpu' | 'cuda' | 'auto';
/** The device a run uses once --device is resolved. */
export type Device = 'cpu' | 'cuda';

export const DEVICE_OPTION = {
  choices: ['cpu', 'cuda', 'auto'] as const,
  default: 'auto' as const,
  describe: 'compute device; auto = cuda when a usable GPU is there, the CUDA backend is built and the run has a GPU path, else cpu; cuda checks the GPU and the memory plan first',
};

/** --optimizer-states of train-stage1/2 and vreflect plan. */
export const OPTIMIZER_STATES_OPTION = {
  choices: ['auto', 'host', 'gpu'] as const,
  default: 'auto' as const,
  describe: 'where AdamW state lives on a CUDA run: gpu (all fp32 on the GPU), host (fp32 master + moments in host memory, the gradients streamed through pinned buffers); both exact; auto: gpu if it fits, else host',
};

/** The capacities a plan is checked against: the GPU's free memory (total when unknown) and this host's memory. */
export interface Capacities {
  gpuCapacity: number;
  hostCapacity: number;
}

/** What a run does on CUDA: 'run', or { refuse: why } (no GPU path for it yet: said once every check passed). */
export type CudaPath = 'run' | { refuse: string };

/**
 * For --device cuda: throws a one-line UserError - the first failed availability check, the memory plan's
 * refusal, or the run's own refusal (no GPU path for it yet); returns when the run can go to the GPU. `plan`
 * builds the run's plan from the capacities; it runs only once the GPU checks pass.
 */
export function requireCuda(plan: (c: Capacities) => GpuPlan, path: CudaPath = 'run'): void {
  const why = cudaRefusal(plan, path);
  if (why) throw new UserError(`--device cuda: ${why}`);
}

/**
 * Resolves --device: 'cuda' checks (requireCuda) and throws on failure; 'auto' runs the same checks and picks the
 * CPU, with a log line saying why, when any fails; 'cpu' is the CPU.
 */
export function resolveDevice(choice: DeviceChoice, plan: (c: Capacities) => GpuPlan, path: CudaPath = 'run'): Device {
  if (choice === 'cpu') return 'cpu';
  if (choice === 'cuda') {
    requireCuda(plan, path);
    return 'cuda';
  }
  let why: string | undefined;
  try {
    why = cudaRefusal(plan, path);
  } catch (e) {
    why = e instanceof Error ? e.message.split('\n')[0] : String(e);  // e.g. a model the planner cannot read
  }
  if (why) {
    log().info({ device: 'cpu', cuda: why }, '--device auto: running on the CPU');
    return 'cpu';
  }
  log().info({ device: 'cuda' }, '--device auto: running on CUDA');
  return 'cuda';
}

/**
 * The addon's own check that it can run on the GPU (cudaRequireDevice: driver, device, kernel image), for runs that
 * do expensive work before loading the model (bench infer writes a checkpoint first). One-line UserError.
 */
export function requireCudaAddon(): void {
  const addon = loadAddon();
  if (typeof addon.cudaRequireDevice !== 'function') throw new UserError('--device cuda: this addon has no CUDA session (rebuild it)');
  try {
    addon.cudaRequireDevice();
  } catch (e) {
    throw new UserError((e instanceof Error ? e.message : String(e)).split('\n')[0]);
  }
}

/**
 * Whether --device auto should even look at CUDA: the quick probe (no free memory) passes. Lets callers skip the
 * plan's inputs (image size, model shape) on machines without a usable GPU.
 */
export function cudaLooksUsable(): boolean {
  try {
    return cudaVerdict(probeCuda({ freeMemory: false })).ok;
  } catch {
    return false;
  }
}

/** Why this run cannot go to CUDA (one line), or undefined when it can. */
function cudaRefusal(plan: (c: Capacities) => GpuPlan, path: CudaPath): string | undefined {
  const verdict = cudaVerdict(probeCuda({ freeMemory: true }));
  if (!verdict.ok) return verdict.error;
  const d = verdict.device!;
  const p = plan({ gpuCapacity: d.freeBytes ?? d.memoryBytes, hostCapacity: availableMemory() });
  log().info({ gpu: d.name, arch: verdict.coverage }, 'CUDA device');
  log().debug('\n' + renderPlan(p));
  if (!p.fits) return p.problem;
  log().info({ gpu_bytes: p.gpuBytes, host_bytes: p.hostBytes, gpu_capacity: p.gpuCapacity }, 'GPU memory plan fits');
  return path === 'run' ? undefined : path.refuse;
}
