// The dense bf16 tensor-core peak of the GPU `bench train --device cuda` ran on, for MFU: vendor datasheet figures
// (without sparsity), matched on the device name. Not measured: the report says so, and an unknown GPU gets no MFU.
export interface GpuPeak {
  bf16_gflops: number;
  source: string;
}

/** [name pattern, dense bf16 TFLOP/s, which part] - more specific patterns first. */
const DATASHEET: [RegExp, number, string][] = [
  [/H100.*(PCIe|PCI-E)/i, 756, 'H100 PCIe'],
  [/H100.*NVL/i, 835, 'H100 NVL'],
  [/H100|H800/i, 989, 'H100 SXM'],
  [/H200|GH200/i, 989, 'H200 SXM'],
  [/A100/i, 312, 'A100'],
  [/L40S/i, 362, 'L40S'],
];

/** The datasheet peak for a GPU name, or undefined (the CUDA emulator, an unknown part). */
export function gpuBf16Peak(deviceName: string | undefined): GpuPeak | undefined {
  if (!deviceName) return undefined;
  for (const [re, tflops, part] of DATASHEET)
    if (re.test(deviceName)) return { bf16_gflops: tflops * 1000, source: `${part} dense bf16 datasheet peak ${tflops} TFLOP/s (not measured), for "${deviceName}"` };
  return undefined;
}
