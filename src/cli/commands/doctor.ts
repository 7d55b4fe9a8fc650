// vreflect doctor: which backends were built and what this machine offers (CPU features, GEMM paths, GPU).
import type { CommandModule } from 'yargs';

import { loadAddon } from '../../native/addon';

interface DoctorArgs {
  json: boolean;
}

export function doctorReport(): Record<string, unknown> {
  const info = loadAddon().info();
  return {
    node: process.version,
    backends: {
      cpu: { built: true, onednn: info.onednn, gemm_f32: info.cpu.gemm_f32, gemm_bf16: info.cpu.gemm_bf16 },
      cuda: { built: info.cudaBuilt },
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

export const doctorCommand: CommandModule<object, DoctorArgs> = {
  command: 'doctor',
  describe: 'report the built backends and this machine (CPU features, GEMM paths, GPU)',
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
      `cuda:  ${b.cuda.built ? 'built' : 'not built'}`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  },
};
