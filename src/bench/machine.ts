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

/** Aggregate CPU time of the machine from /proc/stat, in seconds (USER_HZ = 100 on Linux). */
export interface CpuTimes {
  busy: number; // user + nice + system + irq + softirq
  steal: number; // time the hypervisor ran something else on our vCPUs
  total: number;
}

export function parseProcStat(text: string): CpuTimes | undefined {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return undefined;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = [...v, 0, 0, 0, 0, 0, 0, 0, 0];
  const hz = 100;
  return { busy: (user + nice + system + irq + softirq) / hz, steal: steal / hz, total: (user + nice + system + idle + iowait + irq + softirq + steal) / hz };
}

export function cpuTimes(): CpuTimes | undefined {
  try {
    return parseProcStat(fs.readFileSync('/proc/stat', 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * CPU used by everything else while one measurement ran: machine busy time minus the measuring process's
 * own CPU time, per second of wall time (0 = nothing else ran; 1 = one other core-equivalent was busy),
 * plus the hypervisor's steal time per second.
 */
export function foreignLoad(before: CpuTimes | undefined, after: CpuTimes | undefined, ownCpuS: number, wallS: number): { cores: number; steal: number } | undefined {
  if (!before || !after || wallS <= 0) return undefined;
  return { cores: Math.max(0, (after.busy - before.busy - ownCpuS) / wallS), steal: (after.steal - before.steal) / wallS };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Cores kept busy (and stolen) on average over `ms` while this process sleeps. */
export async function busyCores(ms = 2000): Promise<number | undefined> {
  const a = cpuTimes();
  const t0 = Date.now();
  await sleep(ms);
  const b = cpuTimes();
  if (!a || !b) return undefined;
  const wall = (Date.now() - t0) / 1000;
  return (b.busy - a.busy + b.steal - a.steal) / wall;
}

/**
 * Waits until the machine looks idle (at most `maxBusy` cores busy over a 2 s sample) or `maxWaitS` passed.
 * Returns the seconds waited and the last sample.
 */
export async function waitForIdle(maxWaitS: number, maxBusy = 0.15, say?: (l: string) => void): Promise<{ waitedS: number; busy?: number }> {
  const t0 = Date.now();
  let busy = await busyCores();
  let told = false;
  while (busy !== undefined && busy > maxBusy && (Date.now() - t0) / 1000 < maxWaitS) {
    if (!told) say?.(`other work keeps ${busy.toFixed(2)} cores busy: waiting up to ${maxWaitS} s for an idle machine`);
    told = true;
    await sleep(3000);
    busy = await busyCores();
  }
  return { waitedS: (Date.now() - t0) / 1000, busy };
}

/**
 * A measurement "phase" runner shared by the benches: wait (bounded) for an idle machine, run `fn`, then record
 * how much CPU other work used meanwhile into `otherLoad[label]`, so figures taken on a busy shared VM are flagged
 * instead of silently low.
 */
export function makePhaseRunner(
  waitIdleS: number,
  say: (msg: string) => void,
  otherLoad: Record<string, { cores: number; steal: number }>,
) {
  return async <T>(label: string, fn: () => Promise<T> | T, childCpuS: (r: T) => number = () => 0): Promise<T> => {
    if (waitIdleS > 0) await waitForIdle(waitIdleS, 0.15, say);
    const before = cpuTimes();
    const own0 = process.cpuUsage();
    const t0 = Date.now();
    const r = await fn();
    const own = process.cpuUsage(own0);
    const f = foreignLoad(before, cpuTimes(), (own.user + own.system) / 1e6 + childCpuS(r), (Date.now() - t0) / 1000);
    if (f) {
      otherLoad[label] = f;
      if (f.cores + f.steal > 0.2) say(`${label}: other work used ${(f.cores + f.steal).toFixed(2)} cores meanwhile, figures may be low`);
    }
    return r;
  };
}
