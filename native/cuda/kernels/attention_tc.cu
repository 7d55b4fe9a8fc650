// Tensor-core flash attention forward and backward (FlashAttention-2's loops) and the choice between them and the
// scalar kernels.
// Same semantics and AttnArgs as attention_forward.cu (varlen, GQA, bottom-right causal, lse; rows that see no key:
// out 0, lse -inf); bf16 storage only, head dim D <= 128.
//
// Tiling: a block of 4 warps owns kRows = 64 query rows of one (segment, head); warp w owns rows 16 w .. 16 w + 15,
// so every score, probability and output row lives in one warp's registers and no shared memory is needed for the
// softmax. Head dims are padded to DP = 32, 64, 80 or 128 columns (a template parameter; the padding is loaded as
// zeros and never stored), so the k-loop of S = Q K^T has DP / 16 mma steps and O has DP / 8 column tiles.
// Per key tile of kKeys = 64 keys:
//   S[16 x 64] per warp = Q K^T: 8 n-tiles x DP/16 k-steps of mma.sync.m16n8k16 (Q fragments stay in registers
//     for the whole loop, K fragments come from shared memory by ldmatrix.x4, two n-tiles per instruction);
//   online softmax in the accumulator fragments: lane (g, t) holds rows g and g + 8, columns 2t, 2t+1 of each
//     n-tile, so a row max is a max over the lane's 16 values and the 4 lanes of its quad (two xor shuffles); exp2
//     with the scale folded into log2(e); the row sum l stays per lane until the end (one quad sum at the end);
//   O[16 x DP] += P V: P is rounded to bf16 IN REGISTERS - the S accumulator fragment of n-tiles 2kk, 2kk+1 is
//     exactly the A fragment of k-step kk - and V stays row-major in shared memory: its B fragments come
//     transposed by ldmatrix.x4.trans.
// K and V tiles are double-buffered: tile j+1 is copied by cp.async into the other buffer while tile j is computed
// (one commit, one wait and one __syncthreads per tile; rows whose stride or base is not 16-byte aligned take
// element stores instead).
// Causal: tiles past the last visible key of the block's last row are never loaded (early exit); the mask is
// applied only in tiles that cross the diagonal or the segment's end.
#include <atomic>
#include <cstdlib>
#include <string>

#include "cuda/kernels/attention_common.cuh"
#include "cuda/kernels/mma.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kRows = 64, kKeys = 64, kTcWarps = 4, kTcThreads = kTcWarps * 32;
constexpr int kTcMaxD = 128;

template <int DP>
struct TcTile {
  // bf16 per smem row: a multiple of 16 bytes (ldmatrix rows) whose 8 rows of one ldmatrix phase start 16 bytes
  // apart modulo 128, so they hit 32 different banks.
  static constexpr int kLd = DP + 8;
  static constexpr size_t kQ = size_t(kRows) * kLd, kK = size_t(kKeys) * kLd;
  static constexpr size_t kSmemBytes = sizeof(__nv_bfloat16) * (kQ + 4 * kK);  // Q, 2 x K, 2 x V
};

// Whether 16-byte loads are allowed for q, k, v: base and row stride 16-byte aligned and D a multiple of 8.
struct TcVec {
  bool q, k, v;
};

// Row `row` (< limit) of a [rows, stride] bf16 matrix, columns col0 + cc .. + 7 as 8 values (zero past D).
template <class F>
__device__ __forceinline__ void load8(F&& put, const __nv_bfloat16* src, int64_t stride, int64_t row, int64_t limit,
                                      int64_t col0, int cc, int D, bool vec) {
  using namespace mma;
  const __nv_bfloat16 zero = __float2bfloat16(0.f);
  if (row < limit && vec && cc + 8 <= D) {
    const uint4 v = load16(src + row * stride + col0 + cc);
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
    VR_UNROLL for (int j = 0; j < 8; j++) put(j, bf16_from_bits(uint16_t(w[j / 2] >> (16 * (j % 2)))));
  } else {
    VR_UNROLL for (int j = 0; j < 8; j++) put(j, row < limit && cc + j < D ? src[row * stride + col0 + cc + j] : zero);
  }
}

// S[r][c] = src row r0 + r, head columns [col0, col0 + DP) (zero past D or at rows >= limit), r < kRows (= kKeys).
template <int DP>
__device__ __forceinline__ void load_rows(__nv_bfloat16* S, const __nv_bfloat16* src, int64_t stride, int64_t r0,
                                          int64_t limit, int64_t col0, int D, bool vec) {
  constexpr int kChunks = kRows * DP / 8;
  for (int c = threadIdx.x; c < kChunks; c += kTcThreads) {
    const int r = c / (DP / 8), cc = (c % (DP / 8)) * 8;
    __nv_bfloat16* dst = S + r * TcTile<DP>::kLd + cc;
    load8([&](int j, __nv_bfloat16 x) { dst[j] = x; }, src, stride, r0 + r, limit, col0, cc, D, vec);
  }
}

#if defined(VR_MMA_AVAILABLE)
// load_rows by cp.async where 16-byte chunks allow (zero-filled past D or the limit); element stores otherwise.
// The caller commits, waits and synchronises before reading.
template <int DP>
__device__ __forceinline__ void load_rows_async(__nv_bfloat16* S, const __nv_bfloat16* src, int64_t stride,
                                                int64_t r0, int64_t limit, int64_t col0, int D, bool vec) {
  if (!vec) return load_rows<DP>(S, src, stride, r0, limit, col0, D, vec);
  constexpr int kChunks = kRows * DP / 8;
  for (int c = threadIdx.x; c < kChunks; c += kTcThreads) {
    const int r = c / (DP / 8), cc = (c % (DP / 8)) * 8;
    const int64_t row = r0 + r;
    const bool ok = row < limit && cc + 8 <= D;  // vec: D % 8 == 0, so a chunk is all inside or all padding
    mma::cp_async16(S + r * TcTile<DP>::kLd + cc, ok ? src + row * stride + col0 + cc : src, ok);
  }
}
#endif

template <int DP>
__global__ void __launch_bounds__(kTcThreads)
    attention_tc_forward_kernel(__nv_bfloat16* out, float* lse, const __nv_bfloat16* q, const __nv_bfloat16* k,
                                const __nv_bfloat16* v, AttnArgs a, TcVec vec) {
#if defined(VR_MMA_AVAILABLE)
  using namespace dev;
  using namespace mma;
  using Tile = TcTile<DP>;
  const attn::Segment sg = attn::segment(a, blockIdx.z);
  const int h = blockIdx.y, kvh = h / (a.Hq / a.Hkv), D = a.D;
  const int64_t i0 = int64_t(blockIdx.x) * kRows;
  if (i0 >= sg.Lq) return;  // uniform over the block, before any barrier
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;

  CUDA_DYNAMIC_SHARED(__nv_bfloat16, smem);
  __nv_bfloat16* Qs = smem;                // [kRows][kLd]
  __nv_bfloat16* Ks = Qs + Tile::kQ;       // 2 x [kKeys][kLd]
  __nv_bfloat16* Vs = Ks + 2 * Tile::kK;   // 2 x [kKeys][kLd]

  // Keys past the last visible one of the block's last row are never needed (causal early exit).
  const int64_t last_row = (i0 + kRows < sg.Lq ? i0 + kRows : sg.Lq) - 1;
  const int64_t kend = a.causal ? (last_row + sg.shift + 1 < sg.Lk ? last_row + sg.shift + 1 : sg.Lk) : sg.Lk;
  const int ntiles = kend > 0 ? int((kend + kKeys - 1) / kKeys) : 0;
  const int64_t kcol = int64_t(kvh) * D;
  auto load_kv = [&](int jt, int buf) {
    const int64_t r0 = sg.k0 + int64_t(jt) * kKeys, limit = sg.k0 + sg.Lk;
    load_rows_async<DP>(Ks + buf * Tile::kK, k, a.k_stride, r0, limit, kcol, D, vec.k);
    load_rows_async<DP>(Vs + buf * Tile::kK, v, a.v_stride, r0, limit, kcol, D, vec.v);
  };
  load_rows_async<DP>(Qs, q, a.q_stride, sg.q0 + i0, sg.q0 + sg.Lq, int64_t(h) * D, D, vec.q);
  if (ntiles > 0) load_kv(0, 0);
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();

  uint32_t qf[DP / 16][4];
  VR_UNROLL for (int ks = 0; ks < DP / 16; ks++) ldm_a(qf[ks], Qs, Tile::kLd, warp * 16, ks * 16);

  // Row state of rows g (index 0) and g + 8 (index 1) of this warp: running max (log2 units), this lane's partial
  // row sum, and the output accumulator fragments.
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  float o[DP / 8][4];
  VR_UNROLL for (int nd = 0; nd < DP / 8; nd++) VR_UNROLL for (int e = 0; e < 4; e++) o[nd][e] = 0.f;
  const float scale_log2 = a.scale * 1.4426950408889634f;
  const int64_t row0 = i0 + warp * 16;  // the warp's first query row (segment-relative)

  for (int jt = 0; jt < ntiles; jt++) {
    const int buf = jt & 1;
    if (jt + 1 < ntiles) load_kv(jt + 1, buf ^ 1);  // the other buffer: everyone finished it before the last barrier
    cp_async_commit();                               // in flight while this tile is computed
    const __nv_bfloat16* Kb = Ks + buf * Tile::kK;
    const __nv_bfloat16* Vb = Vs + buf * Tile::kK;
    const int64_t j0 = int64_t(jt) * kKeys;

    float s[kKeys / 8][4];
    VR_UNROLL for (int n = 0; n < kKeys / 8; n++) VR_UNROLL for (int e = 0; e < 4; e++) s[n][e] = 0.f;
    VR_UNROLL for (int ks = 0; ks < DP / 16; ks++) VR_UNROLL for (int n = 0; n < kKeys / 8; n += 2) {
        uint32_t kb0[2], kb1[2];
        ldm_b_nk(kb0, kb1, Kb, Tile::kLd, n * 8, ks * 16);
        mma_bf16_16816(s[n], qf[ks], kb0);
        mma_bf16_16816(s[n + 1], qf[ks], kb1);
      }

    // Scale to log2 units and mask. Only tiles reaching past the segment's keys or, causal, past the diagonal of
    // the warp's first row need the per-element test (uniform over the warp).
    const bool masked = j0 + kKeys > sg.Lk || (a.causal && j0 + kKeys - 1 > row0 + sg.shift);
    float mx[2] = {-INFINITY, -INFINITY};
    VR_UNROLL for (int n = 0; n < kKeys / 8; n++) VR_UNROLL for (int e = 0; e < 4; e++) {
        float x = s[n][e] * scale_log2;
        if (masked) {
          const int64_t row = row0 + g + (e >= 2 ? 8 : 0), key = j0 + n * 8 + 2 * t + (e & 1);
          if (key >= sg.Lk || (a.causal && key > row + sg.shift)) x = -INFINITY;
        }
        s[n][e] = x;
        mx[e >> 1] = fmaxf(mx[e >> 1], x);
      }
    float alpha[2], base[2];
    VR_UNROLL for (int r = 0; r < 2; r++) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(kFullMask, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(kFullMask, mx[r], 2));
      const float mn = fmaxf(m[r], mx[r]);
      alpha[r] = m[r] == -INFINITY ? 0.f : exp2f(m[r] - mn);
      base[r] = mn == -INFINITY ? 0.f : mn;  // a row with no visible key yet: every p is exp2(-inf) = 0
      m[r] = mn;
    }
    float rs[2] = {0.f, 0.f};
    VR_UNROLL for (int n = 0; n < kKeys / 8; n++) VR_UNROLL for (int e = 0; e < 4; e++) {
        const float p = exp2f(s[n][e] - base[e >> 1]);
        s[n][e] = p;
        rs[e >> 1] += p;
      }
    VR_UNROLL for (int r = 0; r < 2; r++) l[r] = l[r] * alpha[r] + rs[r];
    VR_UNROLL for (int nd = 0; nd < DP / 8; nd++) VR_UNROLL for (int e = 0; e < 4; e++) o[nd][e] *= alpha[e >> 1];

    // O += P V, P's A fragment of k-step kk = the S fragments of n-tiles 2kk (a0, a1) and 2kk + 1 (a2, a3).
    VR_UNROLL for (int kk = 0; kk < kKeys / 16; kk++) {
      const uint32_t pa[4] = {pack_bf16x2(s[2 * kk][0], s[2 * kk][1]), pack_bf16x2(s[2 * kk][2], s[2 * kk][3]),
                              pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
      VR_UNROLL for (int nd = 0; nd < DP / 8; nd += 2) {
        uint32_t vb0[2], vb1[2];
        ldm_b_kn(vb0, vb1, Vb, Tile::kLd, nd * 8, kk * 16);
        mma_bf16_16816(o[nd], pa, vb0);
        mma_bf16_16816(o[nd + 1], pa, vb1);
      }
    }
    cp_async_wait<0>();
    __syncthreads();  // tile jt+1 is in; everyone is done with buffer `buf` before it is refilled
  }

  VR_UNROLL for (int r = 0; r < 2; r++) {
    l[r] += __shfl_xor_sync(kFullMask, l[r], 1);
    l[r] += __shfl_xor_sync(kFullMask, l[r], 2);
  }
  VR_UNROLL for (int r = 0; r < 2; r++) {
    const int64_t i = row0 + g + 8 * r;
    if (i >= sg.Lq) continue;
    const float inv = l[r] > 0.f ? 1.0f / l[r] : 0.f;
    __nv_bfloat16* orow = out + (sg.q0 + i) * a.o_stride + int64_t(h) * D;
    VR_UNROLL for (int nd = 0; nd < DP / 8; nd++) VR_UNROLL for (int e = 0; e < 2; e++) {
        const int c = nd * 8 + 2 * t + e;
        if (c < D) orow[c] = from_f32<__nv_bfloat16>(o[nd][2 * r + e] * inv);
      }
    if (lse && t == 0)
      lse[int64_t(h) * a.total_q + sg.q0 + i] = l[r] > 0.f ? (m[r] + log2f(l[r])) * 0.6931471805599453f : -INFINITY;
  }
#else
  // Built for an architecture without bf16 mma: the host never launches this (attention_kernel_resolve).
  (void)out, (void)lse, (void)q, (void)k, (void)v, (void)a, (void)vec;
#endif
}

// ---- backward -------------------------------------------------------------------------------------------------
// With P = exp(scale Q K^T - lse) recomputed from the forward's lse and Delta_i = dO_i . O_i (the scalar backward's
// delta kernel): dV += P^T dO, dP = dO V^T, dS = P (dP - Delta), dK += scale dS^T Q, dQ += scale dS K.
// Two kernels, every output row with one owner, so no atomics (as the scalar backward):
//   dK/dV: a block owns 64 keys of one (kv head, segment), warp w keys 16 w ..; it walks the query tiles of every
//          query head sharing the kv head. Everything is computed TRANSPOSED (rows = keys): S^T = K Q^T and
//          dP^T = V dO^T come out in accumulator fragments whose rows are this warp's keys, so P^T and dS^T are
//          directly the A fragments of dV += P^T dO and dK += dS^T Q. Q and dO are staged once, row-major: B
//          fragments of S^T, dP^T by ldmatrix, of dV, dK by ldmatrix.trans.
//   dQ:    a block owns 64 query rows (the forward's layout) and walks the key tiles: S = Q K^T, dP = dO V^T,
//          dS = P (dP - Delta) as the A fragment of dQ += dS K (K's B fragments by ldmatrix.trans).
// P and dS are rounded to bf16 as mma operands (FlashAttention-2 does the same); sums are fp32.

// lse (to log2 units) and Delta of query rows i0 .. i0 + 63 of head h; rows past the segment: lse -inf.
__device__ __forceinline__ void load_stats(float* lse_s, float* delta_s, const float* lse, const float* delta,
                                           const AttnArgs& a, const attn::Segment& sg, int h, int64_t i0) {
  for (int r = threadIdx.x; r < kRows; r += kTcThreads) {
    const bool ok = i0 + r < sg.Lq;
    const int64_t idx = int64_t(h) * a.total_q + sg.q0 + i0 + r;
    lse_s[r] = ok ? lse[idx] * 1.4426950408889634f : -INFINITY;
    delta_s[r] = ok ? delta[idx] : 0.f;
  }
}

#if defined(VR_MMA_AVAILABLE)  // the mma helpers exist on sm_80+ and the emulator only
// acc[16 x 8 n-tiles] += A B^T over DP columns: A rows r0.. of the [rows][kLd] array As, B rows = the 8 n-tiles
// of the [64][kLd] array Bs (both k-contiguous). The S = Q K^T shape of every score product here.
template <int DP>
__device__ __forceinline__ void scores(float (&acc)[kKeys / 8][4], const __nv_bfloat16* As, int r0,
                                       const __nv_bfloat16* Bs) {
  using namespace mma;
  VR_UNROLL for (int n = 0; n < kKeys / 8; n++) VR_UNROLL for (int e = 0; e < 4; e++) acc[n][e] = 0.f;
  VR_UNROLL for (int ks = 0; ks < DP / 16; ks++) {
    uint32_t af[4];
    ldm_a(af, As, TcTile<DP>::kLd, r0, ks * 16);
    VR_UNROLL for (int n = 0; n < kKeys / 8; n += 2) {
      uint32_t b0[2], b1[2];
      ldm_b_nk(b0, b1, Bs, TcTile<DP>::kLd, n * 8, ks * 16);
      mma_bf16_16816(acc[n], af, b0);
      mma_bf16_16816(acc[n + 1], af, b1);
    }
  }
}

// acc[16 x DP] += X Y with X [16 x 64] given as accumulator fragments (rounded to bf16 here) and Y [64 x DP]
// row-major in shared memory (its B fragments by ldmatrix .trans).
template <int DP>
__device__ __forceinline__ void accumulate_xy(float (&acc)[DP / 8][4], const float (&x)[kKeys / 8][4],
                                              const __nv_bfloat16* Y) {
  using namespace mma;
  VR_UNROLL for (int kk = 0; kk < kKeys / 16; kk++) {
    const uint32_t xa[4] = {pack_bf16x2(x[2 * kk][0], x[2 * kk][1]), pack_bf16x2(x[2 * kk][2], x[2 * kk][3]),
                            pack_bf16x2(x[2 * kk + 1][0], x[2 * kk + 1][1]),
                            pack_bf16x2(x[2 * kk + 1][2], x[2 * kk + 1][3])};
    VR_UNROLL for (int nd = 0; nd < DP / 8; nd += 2) {
      uint32_t y0[2], y1[2];
      ldm_b_kn(y0, y1, Y, TcTile<DP>::kLd, nd * 8, kk * 16);
      mma_bf16_16816(acc[nd], xa, y0);
      mma_bf16_16816(acc[nd + 1], xa, y1);
    }
  }
}

#endif

// dst row (bf16) += factor * the 16 x DP accumulator rows of this warp (rows r0 + g, r0 + g + 8; columns < D).
template <int DP>
__device__ __forceinline__ void add_rows(__nv_bfloat16* base, int64_t stride, int64_t r0, int64_t limit, int D,
                                         float factor, const float (&acc)[DP / 8][4]) {
  using namespace dev;
  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  VR_UNROLL for (int r = 0; r < 2; r++) {
    const int64_t row = r0 + g + 8 * r;
    if (row >= limit) continue;
    __nv_bfloat16* p = base + row * stride;
    VR_UNROLL for (int nd = 0; nd < DP / 8; nd++) VR_UNROLL for (int e = 0; e < 2; e++) {
        const int c = nd * 8 + 2 * t + e;
        if (c < D) p[c] = from_f32<__nv_bfloat16>(to_f32(p[c]) + factor * acc[nd][2 * r + e]);
      }
  }
}

template <int DP>
struct TcBwdSmem {
  using T = TcTile<DP>;
  // dK/dV: K, V, Q, dO [64][kLd]; lse, Delta [64] fp32.
  static constexpr size_t kDkdv = sizeof(__nv_bfloat16) * 4 * T::kK + 2 * kRows * sizeof(float);
  // dQ: Q, dO, K, V [64][kLd].
  static constexpr size_t kDq = sizeof(__nv_bfloat16) * 4 * T::kK;
};

template <int DP>
__global__ void __launch_bounds__(kTcThreads)
    attention_tc_dkdv_kernel(__nv_bfloat16* dk, __nv_bfloat16* dv, const __nv_bfloat16* dout, const float* lse,
                             const float* delta, const __nv_bfloat16* q, const __nv_bfloat16* k,
                             const __nv_bfloat16* v, AttnArgs a, TcVec vec, bool vec_do) {
#if defined(VR_MMA_AVAILABLE)
  using Tile = TcTile<DP>;
  const attn::Segment sg = attn::segment(a, blockIdx.z);
  const int kvh = blockIdx.y, G = a.Hq / a.Hkv, D = a.D;
  const int64_t j0 = int64_t(blockIdx.x) * kKeys;
  if (j0 >= sg.Lk) return;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;

  CUDA_DYNAMIC_SHARED(__nv_bfloat16, smem);
  __nv_bfloat16* Ks = smem;              // [64 keys][kLd]
  __nv_bfloat16* Vs = Ks + Tile::kK;     // [64 keys][kLd]
  __nv_bfloat16* Qs = Vs + Tile::kK;     // [64 q][kLd]
  __nv_bfloat16* dOs = Qs + Tile::kK;    // [64 q][kLd]
  float* lse_s = reinterpret_cast<float*>(dOs + Tile::kK);
  float* delta_s = lse_s + kRows;
  const int64_t kcol = int64_t(kvh) * D;
  load_rows<DP>(Ks, k, a.k_stride, sg.k0 + j0, sg.k0 + sg.Lk, kcol, D, vec.k);
  load_rows<DP>(Vs, v, a.v_stride, sg.k0 + j0, sg.k0 + sg.Lk, kcol, D, vec.v);

  float dk_acc[DP / 8][4], dv_acc[DP / 8][4];
  VR_UNROLL for (int nd = 0; nd < DP / 8; nd++) VR_UNROLL for (int e = 0; e < 4; e++) dk_acc[nd][e] = dv_acc[nd][e] = 0.f;
  const float scale_log2 = a.scale * 1.4426950408889634f;
  const int64_t key0 = j0 + warp * 16;  // this warp's first key (segment-relative)
  // The first query row that sees key j0 is j0 - shift (causal): start at its tile.
  int64_t first = a.causal ? j0 - sg.shift : 0;
  first = first < 0 ? 0 : first / kRows * kRows;

  for (int hh = 0; hh < G; hh++) {
    const int h = kvh * G + hh;
    for (int64_t i0 = first; i0 < sg.Lq; i0 += kRows) {
      __syncthreads();  // K/V are in; the previous query tile is consumed
      const int64_t qr0 = sg.q0 + i0, qlim = sg.q0 + sg.Lq, qcol = int64_t(h) * D;
      load_rows<DP>(Qs, q, a.q_stride, qr0, qlim, qcol, D, vec.q);
      load_rows<DP>(dOs, dout, a.o_stride, qr0, qlim, qcol, D, vec_do);
      load_stats(lse_s, delta_s, lse, delta, a, sg, h, i0);
      __syncthreads();

      float st[kRows / 8][4], dpt[kRows / 8][4];  // S^T, dP^T: rows = this warp's 16 keys, columns = 64 queries
      scores<DP>(st, Ks, warp * 16, Qs);
      scores<DP>(dpt, Vs, warp * 16, dOs);
      const bool masked = j0 + kKeys > sg.Lk || (a.causal && j0 + kKeys - 1 > i0 + sg.shift);
      VR_UNROLL for (int n = 0; n < kRows / 8; n++) VR_UNROLL for (int e = 0; e < 4; e++) {
          const int qi = n * 8 + 2 * t + (e & 1);
          const int64_t key = key0 + g + (e >= 2 ? 8 : 0);
          const bool vis = !masked || (key < sg.Lk && (!a.causal || key <= i0 + qi + sg.shift));
          const float p = vis && lse_s[qi] != -INFINITY ? exp2f(st[n][e] * scale_log2 - lse_s[qi]) : 0.f;
          st[n][e] = p;                               // P^T
          dpt[n][e] = p * (dpt[n][e] - delta_s[qi]);  // dS^T
        }
      accumulate_xy<DP>(dv_acc, st, dOs);
      accumulate_xy<DP>(dk_acc, dpt, Qs);
    }
  }
  const int64_t klim = sg.k0 + sg.Lk;
  if (dk) add_rows<DP>(dk + kcol, a.k_stride, sg.k0 + key0, klim, D, a.scale, dk_acc);
  if (dv) add_rows<DP>(dv + kcol, a.v_stride, sg.k0 + key0, klim, D, 1.0f, dv_acc);
  (void)lane;
#else
  (void)dk, (void)dv, (void)dout, (void)lse, (void)delta, (void)q, (void)k, (void)v, (void)a, (void)vec, (void)vec_do;
#endif
}

template <int DP>
__global__ void __launch_bounds__(kTcThreads)
    attention_tc_dq_kernel(__nv_bfloat16* dq, const __nv_bfloat16* dout, const float* lse, const float* delta,
                           const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, AttnArgs a,
                           TcVec vec, bool vec_do) {
#if defined(VR_MMA_AVAILABLE)
  using Tile = TcTile<DP>;
  const attn::Segment sg = attn::segment(a, blockIdx.z);
  const int h = blockIdx.y, kvh = h / (a.Hq / a.Hkv), D = a.D;
  const int64_t i0 = int64_t(blockIdx.x) * kRows;
  if (i0 >= sg.Lq) return;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;

  CUDA_DYNAMIC_SHARED(__nv_bfloat16, smem);
  __nv_bfloat16* Qs = smem;              // [64 q][kLd]
  __nv_bfloat16* dOs = Qs + Tile::kK;    // [64 q][kLd]
  __nv_bfloat16* Ks = dOs + Tile::kK;    // [64 keys][kLd]
  __nv_bfloat16* Vs = Ks + Tile::kK;     // [64 keys][kLd]
  const int64_t qcol = int64_t(h) * D, kcol = int64_t(kvh) * D;
  load_rows<DP>(Qs, q, a.q_stride, sg.q0 + i0, sg.q0 + sg.Lq, qcol, D, vec.q);
  load_rows<DP>(dOs, dout, a.o_stride, sg.q0 + i0, sg.q0 + sg.Lq, qcol, D, vec_do);

  const int64_t row0 = i0 + warp * 16;
  float lse2[2], dl[2];  // rows g, g + 8 of the warp
  VR_UNROLL for (int r = 0; r < 2; r++) {
    const int64_t i = row0 + g + 8 * r;
    const int64_t idx = int64_t(h) * a.total_q + sg.q0 + i;
    lse2[r] = i < sg.Lq ? lse[idx] * 1.4426950408889634f : -INFINITY;
    dl[r] = i < sg.Lq ? delta[idx] : 0.f;
  }
  float dq_acc[DP / 8][4];
  VR_UNROLL for (int nd = 0; nd < DP / 8; nd++) VR_UNROLL for (int e = 0; e < 4; e++) dq_acc[nd][e] = 0.f;
  const float scale_log2 = a.scale * 1.4426950408889634f;
  const int64_t last_row = (i0 + kRows < sg.Lq ? i0 + kRows : sg.Lq) - 1;
  const int64_t kend = a.causal ? (last_row + sg.shift + 1 < sg.Lk ? last_row + sg.shift + 1 : sg.Lk) : sg.Lk;

  for (int64_t j0 = 0; j0 < kend; j0 += kKeys) {
    __syncthreads();  // Q/dO are in; the previous key tile is consumed
    load_rows<DP>(Ks, k, a.k_stride, sg.k0 + j0, sg.k0 + sg.Lk, kcol, D, vec.k);
    load_rows<DP>(Vs, v, a.v_stride, sg.k0 + j0, sg.k0 + sg.Lk, kcol, D, vec.v);
    __syncthreads();

    float s[kKeys / 8][4], dp[kKeys / 8][4];
    scores<DP>(s, Qs, warp * 16, Ks);
    scores<DP>(dp, dOs, warp * 16, Vs);
    const bool masked = j0 + kKeys > sg.Lk || (a.causal && j0 + kKeys - 1 > row0 + sg.shift);
    VR_UNROLL for (int n = 0; n < kKeys / 8; n++) VR_UNROLL for (int e = 0; e < 4; e++) {
        const int r = e >> 1;
        const int64_t row = row0 + g + 8 * r, key = j0 + n * 8 + 2 * t + (e & 1);
        const bool vis = !masked || (key < sg.Lk && (!a.causal || key <= row + sg.shift));
        const float p = vis && lse2[r] != -INFINITY ? exp2f(s[n][e] * scale_log2 - lse2[r]) : 0.f;
        dp[n][e] = p * (dp[n][e] - dl[r]);  // dS
      }
    accumulate_xy<DP>(dq_acc, dp, Ks);
  }
  add_rows<DP>(dq + qcol, a.q_stride, sg.q0 + row0, sg.q0 + sg.Lq, D, a.scale, dq_acc);
  (void)lane;
#else
  (void)dq, (void)dout, (void)lse, (void)delta, (void)q, (void)k, (void)v, (void)a, (void)vec, (void)vec_do;
#endif
}

bool vec_ok(const void* p, int64_t stride, int D) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0 && stride % 8 == 0 && D % 8 == 0;
}

template <int DP>
void launch_tc(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a, Stream s) {
  const size_t smem = TcTile<DP>::kSmemBytes;
  attn::allow_smem(attention_tc_forward_kernel<DP>, smem, "attention_tc_forward");
  const dim3 grid(unsigned((a.max_seqlen_q + kRows - 1) / kRows), unsigned(a.Hq), unsigned(a.nseq));
  const TcVec vec{vec_ok(q, a.q_stride, a.D), vec_ok(k, a.k_stride, a.D), vec_ok(v, a.v_stride, a.D)};
  check_launch(cuda_launch(attention_tc_forward_kernel<DP>, grid, dim3(kTcThreads), smem, s, dptr(out), lse,
                           dptr(q), dptr(k), dptr(v), a, vec),
               "attention_tc_forward");
}

template <int DP>
void launch_tc_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const float* lse, const float* delta,
                        const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a, Stream s) {
  const TcVec vec{vec_ok(q, a.q_stride, a.D), vec_ok(k, a.k_stride, a.D), vec_ok(v, a.v_stride, a.D)};
  const bool vec_do = vec_ok(dout, a.o_stride, a.D);
  if ((dk || dv) && a.max_seqlen_k > 0) {
    const size_t smem = TcBwdSmem<DP>::kDkdv;
    attn::allow_smem(attention_tc_dkdv_kernel<DP>, smem, "attention_tc_backward dk/dv");
    const dim3 grid(unsigned((a.max_seqlen_k + kKeys - 1) / kKeys), unsigned(a.Hkv), unsigned(a.nseq));
    check_launch(cuda_launch(attention_tc_dkdv_kernel<DP>, grid, dim3(kTcThreads), smem, s, dptr(dk), dptr(dv),
                             dptr(dout), lse, delta, dptr(q), dptr(k), dptr(v), a, vec, vec_do),
                 "attention_tc_backward dk/dv");
  }
  if (dq && a.max_seqlen_q > 0) {
    const size_t smem = TcBwdSmem<DP>::kDq;
    attn::allow_smem(attention_tc_dq_kernel<DP>, smem, "attention_tc_backward dq");
    const dim3 grid(unsigned((a.max_seqlen_q + kRows - 1) / kRows), unsigned(a.Hq), unsigned(a.nseq));
    check_launch(cuda_launch(attention_tc_dq_kernel<DP>, grid, dim3(kTcThreads), smem, s, dptr(dq), dptr(dout), lse,
                             delta, dptr(q), dptr(k), dptr(v), a, vec, vec_do),
                 "attention_tc_backward dq");
  }
}

// VREFLECT_ATTENTION as first read (-1: not yet), so a forward does not scan the environment each time.
std::atomic<int> g_env_path{-1};

AttnKernelPath env_path() {
  const int cached = g_env_path.load(std::memory_order_relaxed);
  if (cached >= 0) return AttnKernelPath(cached);
  const char* e = std::getenv("VREFLECT_ATTENTION");
  const std::string v = e ? e : "";
  AttnKernelPath p;
  if (v.empty() || v == "auto") p = AttnKernelPath::Auto;
  else if (v == "tc") p = AttnKernelPath::TensorCore;
  else if (v == "scalar") p = AttnKernelPath::Scalar;
  else fail("VREFLECT_ATTENTION=", v, " is not one of auto, tc, scalar");  // stays unread: every forward says so
  g_env_path.store(int(p), std::memory_order_relaxed);
  return p;
}

#if !defined(VR_CUDA_EMULATED)
// The compute capability major of the current device (0 when it cannot be read).
int device_major() {
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return major;
}
#endif

}  // namespace

AttnKernelPath attention_kernel_resolve(AttnKernelPath want, int D, bool bf16_storage) {
  const bool env = want == AttnKernelPath::Auto;
  if (env) want = env_path();
  if (want == AttnKernelPath::Scalar) return want;
  const char* who = env ? "VREFLECT_ATTENTION=tc" : "attention: the tensor-core path";
  const bool shape_ok = bf16_storage && D > 0 && D <= kTcMaxD;
#if defined(VR_CUDA_EMULATED)
  if (want == AttnKernelPath::Auto) return AttnKernelPath::Scalar;  // the modelled mma is slow: only when asked
  const int major = 8;
#else
  const int major = device_major();
  if (want == AttnKernelPath::Auto)
    return shape_ok && major >= 8 ? AttnKernelPath::TensorCore : AttnKernelPath::Scalar;
#endif
  VR_CHECK(bf16_storage, who, " needs bf16 storage (fp32 tensors run the scalar kernel)");
  VR_CHECK(shape_ok, who, " supports head dims up to ", kTcMaxD, " (got D=", D, ")");
  VR_CHECK(major >= 8, who, " needs an sm_80+ GPU (this device is sm_", major, "x)");
  return AttnKernelPath::TensorCore;
}

const char* attention_kernel_path_name(AttnKernelPath path) {
  switch (path) {
    case AttnKernelPath::Scalar: return "scalar";
    case AttnKernelPath::TensorCore: return "tensor-core";
    default: return "auto";
  }
}

void attention_env_changed() { g_env_path.store(-1, std::memory_order_relaxed); }

void attention_forward_tc(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a,
                          Stream s) {
  if (a.D <= 32) return launch_tc<32>(out, lse, q, k, v, a, s);
  if (a.D <= 64) return launch_tc<64>(out, lse, q, k, v, a, s);
  if (a.D <= 80) return launch_tc<80>(out, lse, q, k, v, a, s);
  return launch_tc<128>(out, lse, q, k, v, a, s);
}

void attention_backward_tc(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const float* lse, const float* delta,
                           const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a, Stream s) {
  if (a.D <= 32) return launch_tc_backward<32>(dq, dk, dv, dout, lse, delta, q, k, v, a, s);
  if (a.D <= 64) return launch_tc_backward<64>(dq, dk, dv, dout, lse, delta, q, k, v, a, s);
  if (a.D <= 80) return launch_tc_backward<80>(dq, dk, dv, dout, lse, delta, q, k, v, a, s);
  return launch_tc_backward<128>(dq, dk, dv, dout, lse, delta, q, k, v, a, s);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
