// Split-KV ("flash-decoding") attention for a few new query rows after a long KV cache (cuda_kernels.h,
// attention_decode). Two kernels:
//   1. split: grid (key splits, Hkv). A block owns one KV head and one contiguous key range; it loads the
//      R = (Hq / Hkv) * Tq query rows of that head's GQA group once, so each K/V element is read from global
//      memory by exactly one block (the flash kernel reads it once per query head), and runs the online softmax
//      over its keys: partial (m, l, acc) per row, acc unnormalised, into an fp32 workspace.
//   2. combine: grid (Hq * Tq). Merges the splits of one (head, row) in split order (no atomics: the same bits
//      run to run): M = max m_s, w_s = exp(m_s - M), L = sum w_s l_s, out = sum w_s acc_s / L, lse = M + log L.
// Score phase as in attention_forward: a warp owns RPW rows, lane j owns key j of a 32-key tile (row max / sum
// are warp shuffles), accumulators over the head dimension spread over the lanes (NC columns per lane).
// Arithmetic is scalar fp32; the loads are the bandwidth (decode reads the whole cache once per token).
#include <algorithm>
#include <cstring>

#include "cuda/kernels/attention_common.cuh"
#include "cuda/kernels/mma.cuh"  // mma::load16: the 16-byte K / V loads

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

using namespace attn;

// Workspace layout: split s, head h, new row t -> wrow = (s * Hq + h) * Tq + t; acc [wrow][D], (m, l) [wrow][2].
struct Partials {
  float* acc;
  float* ml;
};

using mma::f32_from_bits;
// 4 floats at a 16-byte aligned shared-memory address.
__device__ __forceinline__ float4 ld4(const float* p) { return mma::vector_load<float4>(p, "16-byte float4 load"); }
__device__ __forceinline__ void st4(float* p, const float4& v) { mma::vector_store(p, v, "16-byte float4 store"); }
// The 8 bf16 of v (element 0 in the low half of v.x) as fp32 at dst[0..7] (16-byte aligned): two 16-byte stores.
// Consecutive lanes write 32 bytes apart, so in one store instruction lanes i and i + 4 of a quarter-warp would
// write 128 bytes apart, into the same banks: 2-way. Lanes 4-7 of each quarter-warp write their second half first
// instead: a phase's 8 stores then fill the 8 bank groups of a line when its pieces are in one row (D % 64 == 0:
// the 7B's 128; emulator bank accounting, cuda_emu_banks_attention_decode).
__device__ __forceinline__ void unpack8(float* dst, const uint4& v) {
  const float4 lo = make_float4(f32_from_bits(v.x << 16), f32_from_bits(v.x & 0xffff0000u), f32_from_bits(v.y << 16),
                                f32_from_bits(v.y & 0xffff0000u));
  const float4 hi = make_float4(f32_from_bits(v.z << 16), f32_from_bits(v.z & 0xffff0000u), f32_from_bits(v.w << 16),
                                f32_from_bits(v.w & 0xffff0000u));
  if (threadIdx.x & 4) {
    st4(dst + 4, hi);
    st4(dst, lo);
  } else {
    st4(dst, lo);
    st4(dst + 4, hi);
  }
}

// The K and V rows of one 32-key tile held in registers as 16-byte pieces: a thread owns pieces
// threadIdx.x + kThreads * i (row = piece / (D / 8), 8 columns each). Fetching the next tile before the maths on
// the current one keeps its loads in flight meanwhile (decode is bound by these loads).
template <int NC>
struct TileRegs {
  uint4 k[NC], v[NC];  // NC >= D / 32 = pieces per thread
};
template <int NC>
__device__ __forceinline__ void fetch_tile(TileRegs<NC>& t, const __nv_bfloat16* k, const __nv_bfloat16* v,
                                           const AttnArgs& a, int64_t row0, int64_t row_end, int64_t col0) {
  const int per_row = a.D / 8;
  VR_UNROLL for (int i = 0; i < NC; i++) {
    const int piece = threadIdx.x + kThreads * i, r = piece / per_row, c8 = piece % per_row;
    const int64_t row = row0 + r;
    if (r < kBC && row < row_end) {
      t.k[i] = mma::load16(k + row * a.k_stride + col0 + 8 * c8);
      t.v[i] = mma::load16(v + row * a.v_stride + col0 + 8 * c8);
    } else {
      t.k[i] = t.v[i] = make_uint4(0u, 0u, 0u, 0u);
    }
  }
}
template <int NC>
__device__ __forceinline__ void store_tile(float* Ks, int ks, float* Vs, const TileRegs<NC>& t, int D) {
  const int per_row = D / 8;
  VR_UNROLL for (int i = 0; i < NC; i++) {
    const int piece = threadIdx.x + kThreads * i, r = piece / per_row, c8 = piece % per_row;
    if (r < kBC) {
      unpack8(Ks + r * ks + 8 * c8, t.k[i]);
      unpack8(Vs + r * D + 8 * c8, t.v[i]);
    }
  }
}

// Row stride of the K tile in shared memory. Lane j reads key row j: with D + 1 (element reads) or D + 4 (16-byte
// reads; D + 4 = 4 x odd when D % 8 == 0) the 32 lanes' (or each quarter-warp's) reads hit distinct banks.
template <bool VEC>
__device__ __forceinline__ int k_stride_smem(int D) {
  return VEC ? D + 4 : D + 1;
}
inline size_t split_smem(int R, int D) {
  return sizeof(float) * (size_t(R) * D + size_t(kBC) * (D + 4) + size_t(kBC) * D + size_t(R) * kBC);
}

// VEC: K/V rows are 16-byte aligned pieces (D, the strides and the base pointers multiples of 8 bf16), so tiles
// move through TileRegs; otherwise load_tile's element loads.
template <int NC, int RPW, bool VEC>
__global__ void __launch_bounds__(kThreads) attention_decode_split_kernel(Partials ws, const __nv_bfloat16* q,
                                                                          const __nv_bfloat16* k,
                                                                          const __nv_bfloat16* v, AttnArgs a,
                                                                          int Tq, int splits) {
  using namespace dev;
  const Segment g = segment(a, 0);
  const int split = blockIdx.x, kvh = blockIdx.y, group = a.Hq / a.Hkv, D = a.D, R = group * Tq;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  // Keys [kb, ke) of this split; every row of a bottom-right causal block sees at most the Lk keys. The key count
  // is read on the device (cu_k), so a captured CUDA graph replays this launch for any cache length: the grid is
  // `splits` blocks wide whatever Lk is, and a block whose range is empty writes the neutral partial (m = -inf,
  // l = 0, acc = 0) that the combine weighs 0.
  const int64_t chunk = g.Lk > 0 ? (g.Lk + splits - 1) / splits : 1;
  const int64_t kb = int64_t(split) * chunk;
  const int64_t ke = kb + chunk < g.Lk ? kb + chunk : g.Lk;

  // This warp's rows are warp * RPW + rr, rr < mine (uniform over the warp; 0 for warps past the last row).
  const int mine = R - warp * RPW < 0 ? 0 : R - warp * RPW < RPW ? R - warp * RPW : RPW;
  const int ks = k_stride_smem<VEC>(D);

  CUDA_DYNAMIC_SHARED(float, smem);
  float* Qs = smem;                // [R][D]: row r = hh * Tq + t is new row t of query head kvh * group + hh
  float* Ks = Qs + R * D;          // [BC][ks]
  float* Vs = Ks + kBC * (D + 4);  // [BC][D]
  float* Ps = Vs + kBC * D;        // [R][BC]
  for (int idx = threadIdx.x; idx < R * D; idx += blockDim.x) {
    const int r = idx / D, c = idx % D, t = r % Tq, h = kvh * group + r / Tq;
    Qs[idx] = t < g.Lq ? to_f32(q[(g.q0 + t) * a.q_stride + int64_t(h) * D + c]) : 0.f;
  }

  float m[RPW], l[RPW], acc[RPW][NC];
  VR_UNROLL for (int rr = 0; rr < RPW; rr++) {
    m[rr] = -INFINITY;
    l[rr] = 0.f;
    VR_UNROLL for (int t = 0; t < NC; t++) acc[rr][t] = 0.f;
  }

  TileRegs<NC> regs;
  if (VEC && kb < ke) fetch_tile(regs, k, v, a, g.k0 + kb, g.k0 + ke, int64_t(kvh) * D);
  for (int64_t j0 = kb; j0 < ke; j0 += kBC) {
    __syncthreads();  // Q is loaded; the previous K/V tile is consumed
    if (VEC) {
      store_tile(Ks, ks, Vs, regs, D);
    } else {
      load_tile(Ks, ks, k, a.k_stride, g.k0 + j0, g.k0 + ke, int64_t(kvh) * D, kBC, D);
      load_tile(Vs, D, v, a.v_stride, g.k0 + j0, g.k0 + ke, int64_t(kvh) * D, kBC, D);
    }
    __syncthreads();
    if (VEC && j0 + kBC < ke) fetch_tile(regs, k, v, a, g.k0 + j0 + kBC, g.k0 + ke, int64_t(kvh) * D);
    // Scores of key j0 + lane against this warp's rows: the key row is read from shared memory once for all of
    // them (the q values are broadcasts).
    float dots[RPW];
    VR_UNROLL for (int rr = 0; rr < RPW; rr++) dots[rr] = 0.f;
    const float* kr = Ks + lane * ks;
    if (VEC) {
      for (int c = 0; c < D; c += 4) {
        const float4 kv = ld4(kr + c);
        VR_UNROLL for (int rr = 0; rr < RPW; rr++) {
          if (rr >= mine) break;
          const float4 qv = ld4(Qs + (warp * RPW + rr) * D + c);
          dots[rr] += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
        }
      }
    } else {
      for (int c = 0; c < D; c++) {
        const float kv = kr[c];
        VR_UNROLL for (int rr = 0; rr < RPW; rr++) {
          if (rr >= mine) break;
          dots[rr] += Qs[(warp * RPW + rr) * D + c] * kv;
        }
      }
    }
    VR_UNROLL for (int rr = 0; rr < RPW; rr++) {
      if (rr >= mine) break;  // uniform over the warp
      const int r = warp * RPW + rr, t = r % Tq;
      const int64_t j = j0 + lane;
      const bool vis = t < g.Lq && j < ke && (!a.causal || j <= t + g.shift);
      const float s = vis ? dots[rr] * a.scale : -INFINITY;
      float alpha;
      Ps[r * kBC + lane] = online_softmax_step(s, vis, m[rr], l[rr], alpha);
      VR_UNROLL for (int c = 0; c < NC; c++) acc[rr][c] *= alpha;
    }
    __syncwarp();  // this warp's P rows are written
    // acc += P V: each V row read from shared memory once for all of this warp's rows.
    for (int j = 0; j < kBC; j++) {
      float vv[NC];
      VR_UNROLL for (int c = 0; c < NC; c++) {
        const int col = lane + 32 * c;
        vv[c] = col < D ? Vs[j * D + col] : 0.f;
      }
      VR_UNROLL for (int rr = 0; rr < RPW; rr++) {
        if (rr >= mine) break;
        const float p = Ps[(warp * RPW + rr) * kBC + j];
        VR_UNROLL for (int c = 0; c < NC; c++) acc[rr][c] += p * vv[c];
      }
    }
  }

  VR_UNROLL for (int rr = 0; rr < RPW; rr++) {
    const int r = warp * RPW + rr;
    if (r >= R) continue;
    const int h = kvh * group + r / Tq, t = r % Tq;
    const int64_t wrow = (int64_t(split) * a.Hq + h) * Tq + t;
    VR_UNROLL for (int c = 0; c < NC; c++) {
      const int col = lane + 32 * c;
      if (col < D) ws.acc[wrow * D + col] = acc[rr][c];
    }
    if (lane == 0) ws.ml[2 * wrow] = m[rr], ws.ml[2 * wrow + 1] = l[rr];
  }
}

constexpr int kCombineThreads = 128;

__global__ void __launch_bounds__(kCombineThreads) attention_decode_combine_kernel(
    __nv_bfloat16* out, float* lse, Partials ws, AttnArgs a, int Tq, int splits) {
  using namespace dev;
  __shared__ float w[kMaxDecodeSplits];
  __shared__ float red[32];
  const Segment g = segment(a, 0);
  const int h = blockIdx.x / Tq, t = blockIdx.x % Tq, D = a.D;
  if (t >= g.Lq) return;  // uniform over the block
  const int64_t row0 = int64_t(h) * Tq + t, step = int64_t(a.Hq) * Tq;  // wrow of split s = row0 + s * step

  float mx = -INFINITY;
  for (int s = threadIdx.x; s < splits; s += blockDim.x) mx = fmaxf(mx, ws.ml[2 * (row0 + s * step)]);
  mx = warp_max(mx);
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = mx;
  __syncthreads();
  mx = -INFINITY;
  for (int i = 0; i < int(blockDim.x >> 5); i++) mx = fmaxf(mx, red[i]);
  __syncthreads();  // red is reused by block_sum
  float part = 0.f;
  for (int s = threadIdx.x; s < splits; s += blockDim.x) {
    const float ms = ws.ml[2 * (row0 + s * step)];
    w[s] = ms == -INFINITY ? 0.f : expf(ms - mx);
    part += w[s] * ws.ml[2 * (row0 + s * step) + 1];
  }
  const float L = block_sum(part, red);  // its barriers also publish w
  const float inv = L > 0.f ? 1.0f / L : 0.f;
  for (int c = threadIdx.x; c < D; c += blockDim.x) {
    float o = 0.f;
    for (int s = 0; s < splits; s++) o += w[s] * ws.acc[(row0 + s * step) * D + c];
    out[(g.q0 + t) * a.o_stride + int64_t(h) * D + c] = from_f32<__nv_bfloat16>(o * inv);
  }
  if (lse && threadIdx.x == 0) lse[int64_t(h) * a.total_q + g.q0 + t] = L > 0.f ? mx + logf(L) : -INFINITY;
}

template <int NC, int RPW, bool VEC>
void launch_split_as(const Partials& ws, const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a, int Tq,
                     int splits, Stream s) {
  const int R = (a.Hq / a.Hkv) * Tq;
  const size_t smem = split_smem(R, a.D);
  allow_smem(attention_decode_split_kernel<NC, RPW, VEC>, smem, "attention_decode");
  check_launch(cuda_launch(attention_decode_split_kernel<NC, RPW, VEC>, dim3(unsigned(splits), unsigned(a.Hkv)),
                           dim3(kThreads), smem, s, ws, dptr(q), dptr(k), dptr(v), a, Tq, splits),
               "attention_decode (split)");
}
template <int NC, int RPW>
void launch_split(const Partials& ws, const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a, int Tq,
                  int splits, Stream s) {
  const bool vec = a.D % 8 == 0 && a.k_stride % 8 == 0 && a.v_stride % 8 == 0 &&
                   reinterpret_cast<uintptr_t>(k) % 16 == 0 && reinterpret_cast<uintptr_t>(v) % 16 == 0;
  if (vec) return launch_split_as<NC, RPW, true>(ws, q, k, v, a, Tq, splits, s);
  launch_split_as<NC, RPW, false>(ws, q, k, v, a, Tq, splits, s);
}

template <int NC>
void launch_split_rows(const Partials& ws, const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a, int Tq,
                       int splits, Stream s) {
  const int rpw = ((a.Hq / a.Hkv) * Tq + kWarps - 1) / kWarps;  // rows per warp
  if (rpw <= 2) return launch_split<NC, 2>(ws, q, k, v, a, Tq, splits, s);
  if (rpw <= 4) return launch_split<NC, 4>(ws, q, k, v, a, Tq, splits, s);
  if (rpw <= 8) return launch_split<NC, 8>(ws, q, k, v, a, Tq, splits, s);
  return launch_split<NC, 16>(ws, q, k, v, a, Tq, splits, s);
}

}  // namespace

int attention_decode_splits(int64_t keys, int Hkv, int sms) {
  VR_CHECK(keys >= 0 && Hkv > 0 && sms > 0, "cuda attention_decode_splits: bad arguments (keys ", keys, ", Hkv ", Hkv,
           ", SMs ", sms, ")");
  const int64_t fill = (int64_t(kDecodeBlocksPerSM) * sms + Hkv - 1) / Hkv;  // splits that fill the GPU
  const int64_t most = (keys + kDecodeMinKeysPerSplit - 1) / kDecodeMinKeysPerSplit;
  const int64_t n = std::min<int64_t>({fill, most, int64_t(kMaxDecodeSplits)});
  return int(n < 1 ? 1 : n);
}

int device_sm_count() {
#if defined(VR_CUDA_EMULATED)
  return 132;
#else
  static const int n = [] {
    int dev = 0, sms = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
      (void)cudaGetLastError();
      sms = 0;
    }
    return sms > 0 ? sms : 132;
  }();
  return n;
#endif
}

size_t attention_decode_workspace_floats(int Hq, int Tq, int D, int splits) {
  return size_t(splits) * size_t(Hq) * size_t(Tq) * size_t(D + 2);
}

void attention_decode(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a,
                      int splits, float* workspace, size_t workspace_floats, Stream s) {
  check_args(a, "attention_decode");
  VR_CHECK(a.nseq == 1, "cuda attention_decode: one segment only, got ", a.nseq);
  const int Tq = a.max_seqlen_q;
  VR_CHECK(Tq >= 1 && Tq <= kMaxDecodeRows && a.total_q == Tq, "cuda attention_decode: ", Tq,
           " new rows (total_q ", a.total_q, ") outside [1, ", kMaxDecodeRows, "]: use attention_forward");
  VR_CHECK((a.Hq / a.Hkv) * Tq <= kMaxDecodeGroupRows, "cuda attention_decode: ", a.Hq / a.Hkv,
           " query heads per KV head x ", Tq, " rows > ", kMaxDecodeGroupRows, ": use attention_forward");
  VR_CHECK(splits >= 1 && splits <= kMaxDecodeSplits, "cuda attention_decode: split count ", splits, " outside [1, ",
           kMaxDecodeSplits, "]");
  VR_CHECK(out && q && k && v && workspace, "cuda attention_decode: null q/k/v/out/workspace buffer");
  // Contiguous key ranges of ceil(keys / splits) keys, cut on the device from cu_k (see the split kernel): the
  // launch does not depend on the key count, only on `splits`.
  const size_t need = attention_decode_workspace_floats(a.Hq, Tq, a.D, splits);
  VR_CHECK(workspace_floats >= need, "cuda attention_decode: workspace of ", workspace_floats, " floats < ", need,
           " needed for ", splits, " splits");
  const size_t rows = size_t(splits) * a.Hq * Tq;
  const Partials ws{workspace, workspace + rows * a.D};
  if (a.D <= 128) launch_split_rows<4>(ws, q, k, v, a, Tq, splits, s);
  else launch_split_rows<8>(ws, q, k, v, a, Tq, splits, s);
  check_launch(cuda_launch(attention_decode_combine_kernel, dim3(unsigned(a.Hq * Tq)), dim3(kCombineThreads), 0, s,
                           dptr(out), lse, ws, a, Tq, splits),
               "attention_decode (combine)");
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
