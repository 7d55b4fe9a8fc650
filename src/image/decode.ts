// Image decoding with sharp, converted to RGB the way the reference pipeline does (model.md §3.2): Pillow's
// decoded mode decides the rule, as in qwen-vl-utils' to_rgb: mode RGBA is composited onto white with alpha as
// the mask; every other mode goes through Pillow's convert('RGB') (alpha dropped, gray replicated, palette
// looked up, 16-bit gray clipped to 255, CMYK by Pillow's naive formula). No EXIF rotation, no ICC transform
// (Pillow applies neither).
import * as fs from 'fs';
import sharp from 'sharp';

// sharp's ESM type entry does not export its namespace under moduleResolution "node"; derive the types.
type SharpOptions = NonNullable<Parameters<typeof sharp>[1]>;
type Metadata = Awaited<ReturnType<ReturnType<typeof sharp>['metadata']>>;

/** Pillow's default decompression-bomb error threshold (2 x Image.MAX_IMAGE_PIXELS). */
export const DEFAULT_MAX_INPUT_PIXELS = 2 * 89_478_485;

export interface DecodedImage {
  /** height x width x 3, row-major, interleaved RGB */
  rgb: Uint8Array;
  width: number;
  height: number;
  /** the Pillow mode the file decodes to (RGB, RGBA, L, LA, P, 1, I;16, CMYK) */
  mode: string;
  format: string;
}

export interface DecodeOptions {
  /** refuse images with more pixels than this (before decoding) */
  maxInputPixels?: number;
  /** name used in error messages for Buffer input */
  name?: string;
}

/** Pillow's (v + 128 + ((v + 128) >> 8)) >> 8, the exact division by 255 of its paste/blend code. */
const div255 = (v: number): number => {
  const t = v + 128;
  return ((t >> 8) + t) >> 8;
};

/** Pillow mode of a PNG from its IHDR colour type and bit depth (sharp's metadata cannot tell RGB+tRNS from RGBA). */
function pngMode(buf: Buffer): string | undefined {
  if (buf.length < 26 || buf.toString('latin1', 12, 16) !== 'IHDR') return undefined;
  const depth = buf[24], colorType = buf[25];
  switch (colorType) {
    case 0: return depth === 16 ? 'I;16' : depth === 1 ? '1' : 'L';
    case 2: return 'RGB';
    case 3: return 'P';
    case 4: return depth === 16 ? 'RGBA' : 'LA'; // Pillow reads 16-bit gray+alpha as RGBA
    case 6: return 'RGBA';
    default: return undefined;
  }
}

function pillowMode(meta: Metadata, buf: Buffer): string {
  if (meta.format === 'png') {
    const m = pngMode(buf);
    if (m) return m;
  }
  if (meta.space === 'cmyk') return 'CMYK';
  const ch = meta.channels ?? 3;
  if (meta.isPalette) return 'P';
  if (ch === 1) return meta.depth === 'ushort' ? 'I;16' : 'L';
  if (ch === 2) return 'LA';
  if (ch === 4 && meta.hasAlpha) return 'RGBA';
  return 'RGB';
}

async function toRgb(buf: Buffer, mode: string, opts: SharpOptions): Promise<{ rgb: Uint8Array; width: number; height: number }> {
  if (mode === 'CMYK') {
    // raw C, M, Y, K (libjpeg's Adobe inversion undone by libvips, as Pillow does), then Pillow's cmyk2rgb
    const { data, info } = await sharp(buf, opts).pipelineColourspace('cmyk').toColourspace('cmyk').raw().toBuffer({ resolveWithObject: true });
    const n = info.width * info.height, c = info.channels;
    const rgb = new Uint8Array(n * 3);
    for (let p = 0; p < n; p++) {
      const nk = 255 - data[p * c + 3];
      for (let k = 0; k < 3; k++) rgb[p * 3 + k] = Math.max(0, nk - div255(data[p * c + k] * nk));
    }
    return { rgb, width: info.width, height: info.height };
  }
  if (mode === 'I;16') {
    // Pillow's I;16 -> RGB clips the 16-bit value to 255 (it does not scale)
    const { data, info } = await sharp(buf, opts).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
    const n = info.width * info.height, c = info.channels;
    const v16 = new Uint16Array(data.buffer, data.byteOffset, data.length >> 1);
    const rgb = new Uint8Array(n * 3);
    for (let p = 0; p < n; p++) rgb.fill(Math.min(255, v16[p * c]), p * 3, p * 3 + 3);
    return { rgb, width: info.width, height: info.height };
  }
  if (mode === 'RGBA') {
    const { data, info } = await sharp(buf, opts).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    const n = info.width * info.height;
    const rgb = new Uint8Array(n * 3);
    for (let p = 0; p < n; p++) {
      const a = data[p * 4 + 3], na = 255 * (255 - a);
      for (let k = 0; k < 3; k++) rgb[p * 3 + k] = div255(na + data[p * 4 + k] * a);
    }
    return { rgb, width: info.width, height: info.height };
  }
  // gray, palette, 1-bit, LA, RGB (+tRNS): sharp's sRGB output with alpha removed equals convert('RGB')
  const { data, info } = await sharp(buf, opts).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels instead of 3`);
  return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

/** Decodes a JPEG/PNG/WebP (or other sharp-readable) file or buffer to RGB; one-line errors name the input. */
export async function decodeImage(input: string | Buffer, opts: DecodeOptions = {}): Promise<DecodedImage> {
  const name = typeof input === 'string' ? input : opts.name ?? '<image buffer>';
  let buf: Buffer;
  if (typeof input === 'string') {
    try {
      buf = fs.readFileSync(input);
    } catch (e) {
      throw new Error(`cannot read image ${name}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  } else buf = input;
  const maxPixels = opts.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS;
  const sopts: SharpOptions = { failOn: 'truncated', ignoreIcc: true, limitInputPixels: false, sequentialRead: true };
  let meta: Metadata;
  try {
    meta = await sharp(buf, sopts).metadata();
  } catch (e) {
    throw new Error(`cannot decode image ${name}: ${oneLine(e)}`);
  }
  const w = meta.width ?? 0, h = meta.height ?? 0;
  if (!(w > 0 && h > 0)) throw new Error(`cannot decode image ${name}: no image size in the file`);
  if (w * h > maxPixels) throw new Error(`image ${name} has ${w}x${h} = ${w * h} pixels, more than the limit of ${maxPixels}`);
  const mode = pillowMode(meta, buf);
  try {
    const { rgb, width, height } = await toRgb(buf, mode, sopts);
    return { rgb, width, height, mode, format: meta.format ?? 'unknown' };
  } catch (e) {
    throw new Error(`cannot decode image ${name}: ${oneLine(e)}`);
  }
}

function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0].trim();
}
