// M-RoPE position ids of one sample (transformers' Qwen2_5_VLModel.get_rope_index; method.md Appendix A), for a
// sequence without padding: text tokens get the same position on the t/h/w planes, counting up from 0; an image
// run of t*(h/m)*(w/m) pads gets (base + 0, base + row, base + col) with base = previous max + 1 (t index 0: images
// have second_per_grid_t = 0); text after an image continues at max + 1. `<|lvr|>` slots are ordinary text.
// (native/model/rope_tables.cc::mrope_positions computes the same for inference prompts.)

/**
 * Writes the positions of `ids` into `out` planes: t at out[offset + i], h at out[stride + offset + i], w at
 * out[2*stride + offset + i]. `grids` are the sample's images in order. Returns rope_delta = max + 1 - length.
 */
export function writeMropePositions(
  ids: ArrayLike<number>, grids: ReadonlyArray<readonly [number, number, number]>, imagePadId: number, merge: number,
  out: Int32Array, offset: number, stride: number,
): number {
  const L = ids.length;
  const pt = offset, ph = stride + offset, pw = 2 * stride + offset;
  let next = 0, max = -1, img = 0, i = 0;
  while (i < L) {
    if (ids[i] !== imagePadId) {
      out[pt + i] = out[ph + i] = out[pw + i] = next;
      max = next++;
      i++;
      continue;
    }
    if (img >= grids.length) throw new Error(`mrope: the sequence has more image-pad runs than its ${grids.length} image(s)`);
    const [t, gh, gw] = grids[img++];
    const H = gh / merge, W = gw / merge;
    const n = t * H * W;
    if (i + n > L) throw new Error(`mrope: image ${img - 1} needs ${n} pads but the sequence ends first`);
    let j = 0;
    for (let tt = 0; tt < t; tt++)
      for (let r = 0; r < H; r++)
        for (let c = 0; c < W; c++, j++) {
          if (ids[i + j] !== imagePadId) throw new Error(`mrope: image ${img - 1} needs ${n} consecutive pads, found ${j}`);
          out[pt + i + j] = next; // t index 0 for every image frame (second_per_grid_t = 0)
          out[ph + i + j] = next + r;
          out[pw + i + j] = next + c;
        }
    max = Math.max(max, next + H - 1, next + W - 1);
    next = max + 1;
    i += n;
  }
  if (img !== grids.length) throw new Error(`mrope: the sequence has ${img} image-pad run(s) for ${grids.length} image(s)`);
  return max + 1 - L;
}

/** Positions of one sample as a [3, L] plane array. */
export function mropePositions(ids: ArrayLike<number>, grids: ReadonlyArray<readonly [number, number, number]>, imagePadId: number, merge = 2): { positions: Int32Array; ropeDelta: number } {
  const positions = new Int32Array(3 * ids.length);
  const ropeDelta = writeMropePositions(ids, grids, imagePadId, merge, positions, 0, ids.length);
  return { positions, ropeDelta };
}
