// vreflect doctor: which backends were built and what this machine offers (CPU features, GEMM paths, GPU).
import type { CommandModule } from 'yargs';

import { loadAddon } from '../../native/addon';
import { archCoverage } from '../../plan/cuda_arch';
import { CudaProbe, cudaVerdict, cudaVersionString, ProbeDevice, probeCuda, probedDevices } from '../../plan/cuda_device';
import { formatBytes } from '../../plan/units';

interface DoctorArgs {
  json: boolean;
}

export interface CudaDoctor {
  built: boolean;
  archs: string | null;
  nvcc: string | null;
  runtime: string | null;
  cublaslt: { found: boolean; path?: string; version?: string | number; reason?: string };
  driver: { found: boolean; library: string; version: string | null };
  devices: {
    index: number;
    name: string;
    compute_capability: string;
    memory_bytes: number;
    free_bytes: number | null;
    multiprocessors: number;
    arch_coverage: string | null;
    /** shared memory one block may opt in to (null: not read) */
    smem_optin_bytes: number | null;
    /** the tensor-core attention tile variants that run on this GPU (auto fits them to smem_optin_bytes); null: no CUDA build */
    attention_tiles: { forward: string; backward: string } | { error: string } | null;
  }[];
  ready: boolean;
  error?: string;
}

/** cuBLASLt as the GEMM loader (native/cuda/gemm) reports it, when this build has that loader. */
function cublasLtStatus(p: CudaProbe): CudaDoctor['cublaslt'] {
  if (!p.built) return { found: false, reason: 'CUDA backend not built' };
  const addon = loadAddon();
  if (typeof addon.cublasLtStatus !== 'function') return { found: false, reason: 'this build has no cuBLASLt loader (native/cuda/gemm)' };
  const s = addon.cublasLtStatus();
  return s.found ? { found: true, path: s.path, version: s.version } : { found: false, reason: s.error ?? s.reason ?? 'not found' };
}

function attentionTiles(d: ProbeDevice): CudaDoctor['devices'][number]['attention_tiles'] {
  const t = d.attentionTiles;
  if (!t) return null;
  if (t.error !== undefined || t.forward === undefined || t.backward === undefined) return { error: t.error ?? 'not reported' };
  return { forward: t.forward, backward: t.backward };
}

export function cudaDoctor(p: CudaProbe): CudaDoctor {
  const v = cudaVerdict(p);
  const out: CudaDoctor = {
    built: p.built,
    archs: p.archs ? p.archs.replace(/,/g, ';') : null,
    nvcc: p.nvccVersion,
    // The emulator addon (vreflect_native_emu.node) has no cudart: its runtime version is 0.
    runtime: p.built && p.runtime ? (p.runtime.runtimeVersion ? `cudart ${cudaVersionString(p.runtime.runtimeVersion)} static (linked at build time)` : 'no cudart (CPU emulator)') : null,
    cublaslt: cublasLtStatus(p),
    driver: { found: p.driver.found, library: p.driver.library, version: p.driver.version ? cudaVersionString(p.driver.version) : null },
    devices: probedDevices(p).map((d) => ({
      index: d.index,
      name: d.name,
      compute_capability: `${d.ccMajor}.${d.ccMinor}`,
      memory_bytes: d.memoryBytes,
      free_bytes: d.freeBytes,
      multiprocessors: d.multiprocessors,
      arch_coverage: p.archs ? archCoverage(p.archs, d.ccMajor, d.ccMinor).how : null,
      smem_optin_bytes: d.smemOptinBytes ?? null,
      attention_tiles: attentionTiles(d),
    })),
    ready: v.ok,
  };
  if (!v.ok) out.error = v.error;
  return out;
}

export function doctorReport(): Record<string, unknown> {
  const info = loadAddon().info();
  let cuda: CudaDoctor | { built: boolean; error: string };
  try {
    cuda = cudaDoctor(probeCuda({ freeMemory: true }));
  } catch (e) {
    cuda = { built: info.cudaBuilt, error: `CUDA probe failed: ${(e as Error).message}` };
  }
  return {
    node: process.version,
    backends: {
      cpu: { built: true, onednn: info.onednn, gemm_f32: info.cpu.gemm_f32, gemm_bf16: info.cpu.gemm_bf16 },
      cuda,
    },
    cpu: {
      model: info.cpu.model,
      threads: info.cpu.threads,
      avx2: info.cpu.avx2,
      avx512f: info.cpu.avx512f,
      avx512_bf16: info.cpu.avx512_bf16,
      amx_bf16: info.cpu.amx_bf16,
    },
  };
}

export function cudaLines(c: CudaDoctor): string[] {
  const lines = [
    `cuda:  ${c.built ? `built (archs ${c.archs}, nvcc ${c.nvcc}, ${c.runtime})` : 'not built (no nvcc at install time, or VREFLECT_CUDA=OFF)'}`,
    `       driver: ${c.driver.found ? (c.driver.version ? `CUDA ${c.driver.version} (${c.driver.library})` : c.driver.library) : 'none'}`,
  ];
  for (const d of c.devices) {
    const free = d.free_bytes !== null ? `, ${formatBytes(d.free_bytes)} free` : '';
    lines.push(`       gpu ${d.index}: ${d.name}, compute ${d.compute_capability}, ${formatBytes(d.memory_bytes)}${free}${d.arch_coverage ? `; ${d.arch_coverage}` : ''}`);
    const t = d.attention_tiles;
    const smem = d.smem_optin_bytes !== null ? ` (${Math.round(d.smem_optin_bytes / 1024)} KiB shared memory per block)` : '';
    if (t) lines.push(`         attention tiles${smem}: ${'error' in t ? t.error : `forward ${t.forward}, backward ${t.backward}`}`);
  }
  lines.push(`       cuBLASLt: ${c.cublaslt.found ? `${c.cublaslt.path} (${c.cublaslt.version})` : `not found (${c.cublaslt.reason})`}`);
  lines.push(`       ${c.ready ? 'ready for --device cuda: infer, eval, train-stage1, train-stage2, bench infer, bench train' : `--device cuda unavailable: ${c.error}`}`);
  return lines;
}

export const doctorCommand: CommandModule<object, DoctorArgs> = {
  command: 'doctor',
  describe: 'report the built backends and this machine (CPU features, GEMM paths, GPU, driver)',
  builder: (y) =>
    y.option('json', { type: 'boolean', default: false, describe: 'print one JSON object' }).example('$0 doctor --json', ''),
  handler: (args) => {
    const r = doctorReport();
    if (args.json) {
      process.stdout.write(JSON.stringify(r) + '\n');
      return;
    }
    const b = r.backends as any;
    const c = r.cpu as any;
    const lines = [
      `cpu:   ${c.model} (${c.threads} threads)`,
      `       avx2 ${c.avx2}, avx512f ${c.avx512f}, avx512_bf16 ${c.avx512_bf16}, amx_bf16 ${c.amx_bf16}`,
      `gemm:  fp32 ${b.cpu.gemm_f32}, bf16 ${b.cpu.gemm_bf16} (oneDNN ${b.cpu.onednn ? 'yes' : 'no'})`,
      ...('devices' in b.cuda ? cudaLines(b.cuda) : [`cuda:  ${b.cuda.built ? 'built' : 'not built'}; ${b.cuda.error}`]),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  },
};
