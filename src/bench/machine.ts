// What the benchmark says about the machine: CPU model, family/model numbers (the addon's info() has the
// name only, and "AMD EPYC" alone does not tell Zen 4 from Zen 5), the ISA paths, load and memory.
import * as fs from 'fs';
import * as os from 'os';

export interface CpuDescription {
  model: string;
  vendor: string;
  family?: number;
  modelNumber?: number;
  /** A microarchitecture guess for the families we have met (AMD 0x19 = Zen 3/4, 0x1a = Zen 5). */
  microarchitecture?: string;
  logicalCpus: number;
  amx_bf16: boolean;
  avx512_bf16: boolean;
  avx512f: boolean;
}

/** Parses the first processor block of /proc/cpuinfo text. */
export function describeCpu(cpuinfo: string, logicalCpus: number): CpuDescription {
  const block = cpuinfo.split(/\n\s*\n/)[0] ?? '';
  const field = (name: string) => {
    const m = block.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm'));
    return m ? m[1].trim() : undefined;
  };
  const flags = new Set((field('flags') ?? '').split(/\s+/));
  const family = field('cpu family') !== undefined ? Number(field('cpu family')) : undefined;
  const modelNumber = field('model') !== undefined ? Number(field('model')) : undefined;
  const vendor = field('vendor_id') ?? 'unknown';
  let micro: string | undefined;
  if (vendor === 'AuthenticAMD' && family === 0x1a) micro = 'Zen 5';
  else if (vendor === 'AuthenticAMD' && family === 0x19) micro = flags.has('avx512f') ? 'Zen 4' : 'Zen 3';
  else if (vendor === 'GenuineIntel' && flags.has('amx_bf16')) micro = 'Sapphire Rapids or later';
  return {
    model: field('model name') ?? 'unknown',
    vendor,
    family,
    modelNumber,
    microarchitecture: micro,
    logicalCpus,
    amx_bf16: flags.has('amx_bf16'),
    avx512_bf16: flags.has('avx512_bf16'),
    avx512f: flags.has('avx512f'),
  };
}

export function thisCpu(): CpuDescription {
  let text = '';
  try {
    text = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    // not Linux: the addon's info() still names the CPU
  }
  return describeCpu(text, os.cpus().length);
}

/** One line: "AMD EPYC (Zen 5, family 26 model 2), 2 logical CPUs, AVX-512-BF16, no AMX". */
export function cpuLine(c: CpuDescription): string {
  const id = c.family !== undefined ? `family ${c.family} model ${c.modelNumber}` : '';
  const inner = [c.microarchitecture, id].filter(Boolean).join(', ');
  const isa = [c.amx_bf16 ? 'AMX-BF16' : 'no AMX', c.avx512_bf16 ? 'AVX-512-BF16' : c.avx512f ? 'AVX-512 (no BF16)' : 'no AVX-512'];
  return `${c.model}${inner ? ` (${inner})` : ''}, ${c.logicalCpus} logical CPUs, ${isa.join(', ')}`;
}

/** Peak resident set (VmHWM) and current RSS of this process, in bytes, from /proc/self/status. */
export function rssBytes(): { peak: number; current: number } {
  let status = '';
  try {
    status = fs.readFileSync('/proc/self/status', 'utf8');
  } catch {
    const r = process.resourceUsage();
    return { peak: r.maxRSS * 1024, current: process.memoryUsage().rss };
  }
  const kb = (key: string) => {
    const m = status.match(new RegExp(`^${key}:\\s*(\\d+) kB`, 'm'));
    return m ? Number(m[1]) * 1024 : 0;
  };
  return { peak: kb('VmHWM'), current: kb('VmRSS') };
}

/** 1-minute load average; above ~0.5 on these 2-core machines another job shares the cores. */
export function loadAverage(): number {
  return os.loadavg()[0];
}
