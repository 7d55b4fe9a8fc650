// Whether a GPU's compute capability is covered by the archs a build compiled (CMAKE_CUDA_ARCHITECTURES, e.g.
// "80;90" or "80-real;90"): SASS for sm_XY runs on devices of the same major version and minor >= Y; PTX for
// compute_XY is JIT-compiled by the driver for any device >= XY. CMake's plain "90" embeds both SASS and PTX,
// "90-real" SASS only, "90-virtual" PTX only. Arch-specific targets ("90a") run only on exactly that arch.
export interface CompiledArch {
  arch: number; // 80, 90, 100 ...
  sass: boolean;
  ptx: boolean;
  specific: boolean; // "90a"
}

export function parseArchs(list: string): CompiledArch[] {
  const out: CompiledArch[] = [];
  for (const raw of list.split(/[;,\s]+/).filter(Boolean)) {
    const m = /^(\d+)(a|f)?(?:-(real|virtual))?$/.exec(raw.trim());
    if (!m) continue;
    out.push({ arch: Number(m[1]), specific: m[2] === 'a', sass: m[3] !== 'virtual', ptx: m[3] !== 'real' && m[2] !== 'a' });
  }
  return out;
}

export interface Coverage {
  covered: boolean;
  /** "sm_80 SASS", "compute_90 PTX (JIT)", or why not */
  how: string;
}

export function archCoverage(archList: string, ccMajor: number, ccMinor: number): Coverage {
  const cc = ccMajor * 10 + ccMinor;
  const archs = parseArchs(archList);
  // Best SASS: same major, highest minor <= the device's.
  const sass = archs
    .filter((a) => a.sass && Math.floor(a.arch / 10) === ccMajor && (a.specific ? a.arch === cc : a.arch <= cc))
    .sort((a, b) => b.arch - a.arch)[0];
  if (sass) return { covered: true, how: `sm_${sass.arch}${sass.specific ? 'a' : ''} SASS` };
  const ptx = archs.filter((a) => a.ptx && a.arch <= cc).sort((a, b) => b.arch - a.arch)[0];
  if (ptx) return { covered: true, how: `compute_${ptx.arch} PTX (JIT-compiled by the driver at first use)` };
  return { covered: false, how: `GPU sm_${cc} is not covered by the compiled archs ${archs.map((a) => a.arch).join(';') || archList}` };
}
