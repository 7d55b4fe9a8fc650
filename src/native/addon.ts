// Locates and loads the native addon (build/Release/vreflect_native.node), and gives its objects types.
// VREFLECT_ADDON=/path/to/vreflect_native.node overrides the search (used by parallel dev builds).
import * as fs from 'fs';
import * as path from 'path';

export interface NativeInfo {
  cpu: {
    model: string;
    avx2: boolean;
    avx512f: boolean;
    avx512_bf16: boolean;
    amx_bf16: boolean;
    threads: number;
    gemm_f32: string;
    gemm_bf16: string;
  };
  onednn: boolean;
  cudaBuilt: boolean;
}

// The addon's raw export object. Each binding module adds members; see native/addon/*_binding.cc.
export interface NativeAddon {
  info(): NativeInfo;
  setThreads(n: number): void;
  [name: string]: any;
}

let cached: NativeAddon | undefined;

export function addonPath(): string {
  const override = process.env.VREFLECT_ADDON;
  if (override) {
    if (!fs.existsSync(override)) throw new Error(`VREFLECT_ADDON points to a missing file: ${override}`);
    return path.resolve(override);
  }
  // Walk up from this file (src/native or dist/src/native) to the package root holding build/Release.
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'build', 'Release', 'vreflect_native.node');
    if (fs.existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error('native addon not built: run `npm install` (or `npm run build:native`) in the vreflect package');
}

export function loadAddon(): NativeAddon {
  if (!cached) {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    cached = require(addonPath()) as NativeAddon;
  }
  return cached;
}
