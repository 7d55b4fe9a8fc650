// Typed access to the addon's image functions (native/addon/image_binding.cc).
import { loadAddon } from '../native/addon';

export interface NativePatchifyParams {
  rescale?: number;
  mean?: [number, number, number];
  std?: [number, number, number];
  patch?: number;
  merge?: number;
  temporalPatch?: number;
}

/** Pillow-exact BICUBIC resize of an interleaved uint8 image (1..4 channels). */
export function resizeBicubic(src: Uint8Array, width: number, height: number, channels: number, outWidth: number, outHeight: number): Uint8Array {
  return loadAddon().resizeBicubic(src, width, height, channels, outWidth, outHeight);
}

/** Resize (Pillow bicubic) + rescale/normalise + patchify, off the main thread. */
export function nativePreprocess(
  rgb: Uint8Array, width: number, height: number, outWidth: number, outHeight: number, params: NativePatchifyParams,
): Promise<{ pixelValues: Float32Array; resized: Uint8Array }> {
  return loadAddon().preprocessImage({ rgb, width, height, outWidth, outHeight, ...params });
}
