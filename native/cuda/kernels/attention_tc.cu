// Tensor-core flash attention forward and backward (FlashAttention-2's loops) and the choice between them and the
// scalar kernels.
// Same semantics and AttnArgs as attention_forward.cu (varlen, GQA, bottom-right causal, lse; rows that see no key:
// out 0, lse -inf); bf16 storage only, head dim D <= 128.
//
// Tiling (the default shape, "64x64w4"): a block of 4 warps owns 64 query rows of one (segment, head); warp w owns
// rows 16 w .. 16 w + 15, so every score, probability and output row lives in one warp's registers and no shared
// memory is needed for the softmax. Head dims are padded to DP = 32, 64, 80 or 128 columns (a template parameter;
// the padding is loaded as zeros and never stored), so the k-loop of S = Q K^T has DP / 16 mma steps and O has
// DP / 8 column tiles. Per key tile of 64 keys:
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
//
// Tile-shape variants (head dim 81..128 only; VREFLECT_ATTENTION_TILE_FWD / _BWD, kFwdVariants / kBwdVariants):
// the forward is templated on m-tiles per warp MT (1 or 2: a warp owns 16 MT rows, and every K / V fragment pair
// loaded by ldmatrix serves MT m-tiles - FlashAttention-2's 128-row blocks of 4 warps; with MT = 2 Q is re-read from
// shared memory per k-step instead of held in 64 registers), warps W (4 or 8) and keys per tile KN (32, 64, 128).
// K / V double-buffered, or (names ending in "s") single K and V buffers with FlashAttention-2's staggered copies,
// for the shapes whose double buffers would pass 99 KiB of shared memory, and 64x64w4s to compare the two.
// The backward is templated on warps W (a block of 16 W keys in dK/dV, 16 W query rows in dQ, still 16 rows per
// warp: two 16 x DP fp32 accumulators per warp leave no room for a second m-tile), the inner tile T (query rows
// per step of dK/dV, keys per step of dQ) and DB: single inner buffers (each tile's copies waited for before its
// maths: the tensor cores idle during every load) or, names ending in "d", double buffers - tile i+1's Q / dO and
// lse / Delta (dK/dV) or K / V (dQ) in flight while tile i is computed, FlashAttention-2's overlap, one barrier per
// tile. The "d" shapes over 99 KiB (64x64w4d, 128x32w8d, 128x64w8d) run on sm_80 / sm_90 only; selecting a "d"
// variant also double-buffers head dims <= 80 (64x64w4d).

#include <atomic>
#include <iterator>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/kernels/attention_common.cuh"
#include "cuda/kernels/env_switch.h"
#include "cuda/kernels/mma.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kTcMaxD = 128;
// Shared memory a variant may use: the opt-in limit of sm_86 / sm_89 (99 KiB; sm_80 allows 163, sm_90 227), so every
// variant runs on every sm_80+ GPU and leaves room for a second block per SM on an H100.
constexpr size_t kTcMaxSmem = 99 * 1024;

// bf16 per smem row: a multiple of 16 bytes (ldmatrix rows) whose 8 rows of one ldmatrix phase start 16 bytes apart
// modulo 128, so they hit 32 different banks.
template <int DP>
constexpr int kTcLd = DP + 8;

// A forward tile shape: W warps, each owning MT m-tiles of 16 query rows (16 MT W rows per block), KN keys per K/V
// tile. ST = 0: K/V tiles double-buffered (Q + 2 K + 2 V in shared memory; one barrier per tile); ST = 1: single
// buffers with FlashAttention-2's staggered loads: K of the next tile is copied while this tile's softmax and P V
// run, V of the next tile while its S = Q K^T runs (Q + K + V; two barriers per tile).
template <int DP, int MT, int W, int KN, int ST>
struct FwdShape {
  static_assert(MT == 1 || MT == 2, "one or two m-tiles per warp");
  static_assert(KN % 16 == 0, "key tiles are whole k-steps of P V");
  static constexpr int kLd = kTcLd<DP>, kRows = 16 * MT * W, kThreads = 32 * W;
  static constexpr size_t kQ = size_t(kRows) * kLd, kKV = size_t(KN) * kLd;
  static constexpr bool kDouble = ST == 0;
  static constexpr size_t kSmemBytes = sizeof(__nv_bfloat16) * (kQ + (kDouble ? 4 : 2) * kKV);
  static_assert(kSmemBytes <= kTcMaxSmem, "tile shape over the shared-memory budget");
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

// S[r][c] = src row r0 + r, head columns [col0, col0 + DP) (zero past D or at rows >= limit), r < ROWS, by a block
// of THREADS threads.
template <int DP, int ROWS, int THREADS>
__device__ __forceinline__ void load_rows(__nv_bfloat16* S, const __nv_bfloat16* src, int64_t stride, int64_t r0,
                                          int64_t limit, int64_t col0, int D, bool vec) {
  constexpr int kChunks = ROWS * DP / 8;
  for (int c = threadIdx.x; c < kChunks; c += THREADS) {
    const int r = c / (DP / 8), cc = (c % (DP / 8)) * 8;
    __nv_bfloat16* dst = S + r * kTcLd<DP> + cc;
    load8([&](int j, __nv_bfloat16 x) { dst[j] = x; }, src, stride, r0 + r, limit, col0, cc, D, vec);
  }
}

#if defined(VR_MMA_AVAILABLE)
// load_rows by cp.async where 16-byte chunks allow (zero-filled past D or the limit); element stores otherwise.
// The caller commits, waits and synchronises before reading.
template <int DP, int ROWS, int THREADS>
__device__ __forceinline__ void load_rows_async(__nv_bfloat16* S, const __nv_bfloat16* src, int64_t stride,
                                                int64_t r0, int64_t limit, int64_t col0, int D, bool vec) {
  if (!vec) return load_rows<DP, ROWS, THREADS>(S, src, stride, r0, limit, col0, D, vec);
  constexpr int kPerRow = DP / 8, kChunks = ROWS * kPerRow;
  static_assert(ROWS % 8 == 0, "tiles are whole groups of 8 rows");
  for (int c = threadIdx.x; c < kChunks; c += THREADS) {
    // Each quarter-warp's 8 chunks must fill the 8 different 16-byte bank groups of a 128-byte line (cp.async
    // writes 16 bytes per lane in quarter-warp phases). A padded row is kPerRow + 1 = an odd number of 16-byte
    // slots, so 8 consecutive chunks of one row do, and so does one chunk column of 8 consecutive rows; 8 consecutive
    // chunks that cross a row end do not (DP 80: 10 chunks a row, DP 32: 4 - a 2-way conflict on most copies, seen by
    // the emulator's bank accounting, cuda_emu_banks_attention_tc). So rows of 16 or 8 chunks go row by row, others
    // by chunk columns of 8 rows (a warp then reads 64 contiguous bytes of each of 8 rows: whole 32-byte sectors).
    int r, cc;
    if constexpr (kPerRow % 8 == 0) {
      r = c / kPerRow, cc = (c % kPerRow) * 8;
    } else {
      const int group = c / (8 * kPerRow), w = c % (8 * kPerRow);
      r = 8 * group + w % 8, cc = (w / 8) * 8;
    }
    const int64_t row = r0 + r;
    const bool ok = row < limit && cc + 8 <= D;  // vec: D % 8 == 0, so a chunk is all inside or all padding
    mma::cp_async16(S + r * kTcLd<DP> + cc, ok ? src + row * stride + col0 + cc : src, ok);
  }
}
#endif

template <int DP, int MT, int W, int KN, int ST>
__global__ void __launch_bounds__(32 * W)
    attention_tc_forward_kernel(__nv_bfloat16* out, float* lse, const __nv_bfloat16* q, const __nv_bfloat16* k,
                                const __nv_bfloat16* v, AttnArgs a, TcVec vec) {
#if defined(VR_MMA_AVAILABLE)
  using namespace dev;
  using namespace mma;
  using F = FwdShape<DP, MT, W, KN, ST>;
  constexpr int kLd = F::kLd, kRows = F::kRows, kT = F::kThreads;
  constexpr bool kQInRegs = MT == 1;  // two m-tiles' Q fragments would cost 64 more registers: re-read by ldmatrix
  const attn::Segment sg = attn::segment(a, blockIdx.z);
  const int h = blockIdx.y, kvh = h / (a.Hq / a.Hkv), D = a.D;
  const int64_t i0 = int64_t(blockIdx.x) * kRows;
  if (i0 >= sg.Lq) return;  // uniform over the block, before any barrier
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;

  CUDA_DYNAMIC_SHARED(__nv_bfloat16, smem);
  constexpr int kBufs = F::kDouble ? 2 : 1;
  __nv_bfloat16* Qs = smem;                  // [kRows][kLd]
  __nv_bfloat16* Ks = Qs + F::kQ;            // kBufs x [KN][kLd]
  __nv_bfloat16* Vs = Ks + kBufs * F::kKV;   // kBufs x [KN][kLd]

  // Keys past the last visible one of the block's last row are never needed (causal early exit).
  const int64_t last_row = (i0 + kRows < sg.Lq ? i0 + kRows : sg.Lq) - 1;
  const int64_t kend = a.causal ? (last_row + sg.shift + 1 < sg.Lk ? last_row + sg.shift + 1 : sg.Lk) : sg.Lk;
  const int ntiles = kend > 0 ? int((kend + KN - 1) / KN) : 0;
  const int64_t kcol = int64_t(kvh) * D, klim = sg.k0 + sg.Lk;
  auto load_k = [&](int jt, int buf) {
    load_rows_async<DP, KN, kT>(Ks + buf * F::kKV, k, a.k_stride, sg.k0 + int64_t(jt) * KN, klim, kcol, D, vec.k);
  };
  auto load_v = [&](int jt, int buf) {
    load_rows_async<DP, KN, kT>(Vs + buf * F::kKV, v, a.v_stride, sg.k0 + int64_t(jt) * KN, klim, kcol, D, vec.v);
  };
  load_rows_async<DP, kRows, kT>(Qs, q, a.q_stride, sg.q0 + i0, sg.q0 + sg.Lq, int64_t(h) * D, D, vec.q);
  if constexpr (F::kDouble) {
    if (ntiles > 0) load_k(0, 0), load_v(0, 0);
    cp_async_commit();
    cp_async_wait<0>();
  } else {
    if (ntiles > 0) load_k(0, 0);
    cp_async_commit();  // Q, K_0
    if (ntiles > 0) load_v(0, 0);
    cp_async_commit();  // V_0: may still be in flight while S_0 is computed
    cp_async_wait<1>();
  }
  __syncthreads();

  const int wr0 = warp * MT * 16;  // the warp's first row in the block; m-tile mt owns rows wr0 + 16 mt ..
  uint32_t qf[kQInRegs ? DP / 16 : 1][4];
  if constexpr (kQInRegs) {
    VR_UNROLL for (int ks = 0; ks < DP / 16; ks++) ldm_a(qf[ks], Qs, kLd, wr0, ks * 16);
  }

  // Row state of rows g (index 0) and g + 8 (index 1) of each m-tile: running max (log2 units), this lane's
  // partial row sum, and the output accumulator fragments.
  float m[MT][2], l[MT][2], o[MT][DP / 8][4];
  VR_UNROLL for (int mt = 0; mt < MT; mt++) {
    m[mt][0] = m[mt][1] = -INFINITY, l[mt][0] = l[mt][1] = 0.f;
    VR_UNROLL for (int nd = 0; nd < DP / 8; nd++) VR_UNROLL for (int e = 0; e < 4; e++) o[mt][nd][e] = 0.f;
  }
  const float scale_log2 = a.scale * 1.4426950408889634f;

  for (int jt = 0; jt < ntiles; jt++) {
    const int buf = F::kDouble ? (jt & 1) : 0;
    if constexpr (F::kDouble) {
      // The other buffer: everyone finished it before the last barrier. In flight while this tile is computed.
      if (jt + 1 < ntiles) load_k(jt + 1, buf ^ 1), load_v(jt + 1, buf ^ 1);
      cp_async_commit();
    }
    const __nv_bfloat16* Kb = Ks + buf * F::kKV;
    const __nv_bfloat16* Vb = Vs + buf * F::kKV;
    const int64_t j0 = int64_t(jt) * KN;

    // S = Q K^T: each K fragment pair (ldmatrix.x4) serves every m-tile of the warp.
    float s[MT][KN / 8][4];
    VR_UNROLL for (int mt = 0; mt < MT; mt++) VR_UNROLL for (int n = 0; n < KN / 8; n++) VR_UNROLL for (int e = 0; e < 4; e++)
        s[mt][n][e] = 0.f;
    VR_UNROLL for (int ks = 0; ks < DP / 16; ks++) {
      uint32_t af[MT][4];
      VR_UNROLL for (int mt = 0; mt < MT; mt++) {
        if constexpr (kQInRegs) {
          VR_UNROLL for (int e = 0; e < 4; e++) af[mt][e] = qf[ks][e];
        } else {
          ldm_a(af[mt], Qs, kLd, wr0 + 16 * mt, ks * 16);
        }
      }
      VR_UNROLL for (int n = 0; n < KN / 8; n += 2) {
        uint32_t kb0[2], kb1[2];
        ldm_b_nk(kb0, kb1, Kb, kLd, n * 8, ks * 16);
        VR_UNROLL for (int mt = 0; mt < MT; mt++) {
          mma_bf16_16816(s[mt][n], af[mt], kb0);
          mma_bf16_16816(s[mt][n + 1], af[mt], kb1);
        }
      }
    }
    if constexpr (!F::kDouble) {
      cp_async_wait<0>();  // V_jt is in
      __syncthreads();     // ... for everyone, and everyone is done with K_jt: K_jt+1 overwrites it during softmax, P V
      if (jt + 1 < ntiles) load_k(jt + 1, 0);
      cp_async_commit();
    }

    VR_UNROLL for (int mt = 0; mt < MT; mt++) {
      const int64_t row0 = i0 + wr0 + 16 * mt;  // the m-tile's first query row (segment-relative)
      // Scale to log2 units and mask. Only tiles reaching past the segment's keys or, causal, past the diagonal of
      // the m-tile's first row need the per-element test (uniform over the warp).
      const bool masked = j0 + KN > sg.Lk || (a.causal && j0 + KN - 1 > row0 + sg.shift);
      float mx[2] = {-INFINITY, -INFINITY};
      VR_UNROLL for (int n = 0; n < KN / 8; n++) VR_UNROLL for (int e = 0; e < 4; e++) {
          float x = s[mt][n][e] * scale_log2;
          if (masked) {
            const int64_t row = row0 + g + (e >= 2 ? 8 : 0), key = j0 + n * 8 + 2 * t + (e & 1);
            if (key >= sg.Lk || (a.causal && key > row + sg.shift)) x = -INFINITY;
          }
          s[mt][n][e] = x;
          mx[e >> 1] = fmaxf(mx[e >> 1], x);
        }
      float alpha[2], base[2];
      VR_UNROLL for (int r = 0; r < 2; r++) {
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(kFullMask, mx[r], 1));
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(kFullMask, mx[r], 2));
        const float mn = fmaxf(m[mt][r], mx[r]);
        alpha[r] = m[mt][r] == -INFINITY ? 0.f : exp2f(m[mt][r] - mn);
        base[r] = mn == -INFINITY ? 0.f : mn;  // a row with no visible key yet: every p is exp2(-inf) = 0
        m[mt][r] = mn;
      }
      float rs[2] = {0.f, 0.f};
      VR_UNROLL for (int n = 0; n < KN / 8; n++) VR_UNROLL for (int e = 0; e < 4; e++) {
          const float p = exp2f(s[mt][n][e] - base[e >> 1]);
          s[mt][n][e] = p;
          rs[e >> 1] += p;
        }
      VR_UNROLL for (int r = 0; r < 2; r++) l[mt][r] = l[mt][r] * alpha[r] + rs[r];
      VR_UNROLL for (int nd = 0; nd < DP / 8; nd++) VR_UNROLL for (int e = 0; e < 4; e++) o[mt][nd][e] *= alpha[e >> 1];
    }

    // O += P V, P's A fragment of k-step kk = the S fragments of n-tiles 2kk (a0, a1) and 2kk + 1 (a2, a3); each V
    // fragment pair (ldmatrix.x4.trans) serves every m-tile.
    VR_UNROLL for (int kk = 0; kk < KN / 16; kk++) {
      uint32_t pa[MT][4];
      VR_UNROLL for (int mt = 0; mt < MT; mt++) {
        pa[mt][0] = pack_bf16x2(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        pa[mt][1] = pack_bf16x2(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        pa[mt][2] = pack_bf16x2(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        pa[mt][3] = pack_bf16x2(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
      }
      VR_UNROLL for (int nd = 0; nd < DP / 8; nd += 2) {
        uint32_t vb0[2], vb1[2];
        ldm_b_kn(vb0, vb1, Vb, kLd, nd * 8, kk * 16);
        VR_UNROLL for (int mt = 0; mt < MT; mt++) {
          mma_bf16_16816(o[mt][nd], pa[mt], vb0);
          mma_bf16_16816(o[mt][nd + 1], pa[mt], vb1);
        }
      }
    }
    cp_async_wait<0>();  // double: tile jt+1 is in; staggered: K_jt+1 is in
    __syncthreads();     // ... and everyone is done with this tile's buffers before they are refilled
    if constexpr (!F::kDouble) {
      if (jt + 1 < ntiles) load_v(jt + 1, 0);
      cp_async_commit();
    }
  }

  VR_UNROLL for (int mt = 0; mt < MT; mt++) {
    VR_UNROLL for (int r = 0; r < 2; r++) {
      l[mt][r] += __shfl_xor_sync(kFullMask, l[mt][r], 1);
      l[mt][r] += __shfl_xor_sync(kFullMask, l[mt][r], 2);
    }
    VR_UNROLL for (int r = 0; r < 2; r++) {
      const int64_t i = i0 + wr0 + 16 * mt + g + 8 * r;
      if (i >= sg.Lq) continue;
      const float inv = l[mt][r] > 0.f ? 1.0f / l[mt][r] : 0.f;
      __nv_bfloat16* orow = out + (sg.q0 + i) * a.o_stride + int64_t(h) * D;
      VR_UNROLL for (int nd = 0; nd < DP / 8; nd++) VR_UNROLL for (int e = 0; e < 2; e++) {
          const int c = nd * 8 + 2 * t + e;
          if (c < D) orow[c] = from_f32<__nv_bfloat16>(o[mt][nd][2 * r + e] * inv);
        }
      if (lse && t == 0)
        lse[int64_t(h) * a.total_q + sg.q0 + i] =
            l[mt][r] > 0.f ? (m[mt][r] + log2f(l[mt][r])) * 0.6931471805599453f : -INFINITY;
    }
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
// Pipelines (BwdShape DB): single-buffered, per inner tile: barrier, copies, wait, barrier, maths. Double-buffered:
// before the loop tile 0 is copied and waited for; per tile i: copies of tile i+1 into the other buffer (its lse /
// Delta into registers), commit, maths on tile i, lse / Delta stored, wait, ONE barrier - which both publishes tile
// i+1 and tells every warp that buffer i is free for tile i+2's copies. The dK/dV kernel walks its query tiles across
// the GQA group's heads as one sequence, so the next head's first tile is prefetched too.

// A backward tile shape: W warps of 16 rows each own a block of 16 W rows - keys in the dK/dV kernel, query rows in
// the dQ kernel - and walk the other side in tiles of T (query rows for dK/dV, keys for dQ), copied by cp.async (Q,
// dO per query tile, lse / Delta by plain loads; K, V per key tile). DB = 0: one inner-tile buffer, each tile's
// copies waited for before its maths (two barriers per tile); DB = 1: two, tile i+1 copied into the other while
// tile i is computed (one barrier per tile; lse / Delta of tile i+1 fetched into registers before tile i's maths and
// stored after it). Double buffers of the larger shapes pass the 99 KiB every sm_80+ GPU allows: they are held to
// sm_80's 163 KiB (kTcMaxSmemSm80) and refused in one line on a GPU with less (launch_tc_backward).
constexpr size_t kTcMaxSmemSm80 = 163 * 1024;
template <int DP, int W, int T, int DB>
struct BwdShape {
  static_assert(T % 16 == 0, "inner tiles are whole k-steps");
  static_assert(DB == 0 || DB == 1, "single or double inner buffers");
  static constexpr bool kDouble = DB == 1;
  static constexpr int kLd = kTcLd<DP>, kBlock = 16 * W, kThreads = 32 * W, kBufs = kDouble ? 2 : 1;
  static_assert(!kDouble || T <= kThreads, "one thread fetches one row's lse / Delta of the next tile");
  static constexpr size_t kB = size_t(kBlock) * kLd, kT = size_t(T) * kLd;
  // K V, kBufs x (Q dO), kBufs x (lse Delta)
  static constexpr size_t kDkdv = sizeof(__nv_bfloat16) * (2 * kB + 2 * kBufs * kT) + kBufs * 2 * T * sizeof(float);
  static constexpr size_t kDq = sizeof(__nv_bfloat16) * (2 * kB + 2 * kBufs * kT);  // Q dO, kBufs x (K V)
  static constexpr size_t kSmemBytes = kDkdv > kDq ? kDkdv : kDq;
  static_assert(kSmemBytes <= (kDouble ? kTcMaxSmemSm80 : kTcMaxSmem), "tile shape over the shared-memory budget");
};

// lse (to log2 units) and Delta of query rows i0 .. i0 + ROWS - 1 of head h; rows past the segment: lse -inf.
template <int ROWS, int THREADS>
__device__ __forceinline__ void load_stats(float* lse_s, float* delta_s, const float* lse, const float* delta,
                                           const AttnArgs& a, const attn::Segment& sg, int h, int64_t i0) {
  for (int r = threadIdx.x; r < ROWS; r += THREADS) {
    const bool ok = i0 + r < sg.Lq;
    const int64_t idx = int64_t(h) * a.total_q + sg.q0 + i0 + r;
    lse_s[r] = ok ? lse[idx] * 1.4426950408889634f : -INFINITY;
    delta_s[r] = ok ? delta[idx] : 0.f;
  }
}

#if defined(VR_MMA_AVAILABLE)  // the mma helpers exist on sm_80+ and the emulator only
// acc[16 x NT n-tiles] = A B^T over DP columns: A rows r0.. of the [rows][kLd] array As, B rows = the NT n-tiles of
// the [8 NT][kLd] array Bs (both k-contiguous). The S = Q K^T shape of every score product here.
template <int DP, int NT>
__device__ __forceinline__ void scores(float (&acc)[NT][4], const __nv_bfloat16* As, int r0, const __nv_bfloat16* Bs) {
  using namespace mma;
  constexpr int kLd = kTcLd<DP>;
  VR_UNROLL for (int n = 0; n < NT; n++) VR_UNROLL for (int e = 0; e < 4; e++) acc[n][e] = 0.f;
  VR_UNROLL for (int ks = 0; ks < DP / 16; ks++) {
    uint32_t af[4];
    ldm_a(af, As, kLd, r0, ks * 16);
    VR_UNROLL for (int n = 0; n < NT; n += 2) {
      uint32_t b0[2], b1[2];
      ldm_b_nk(b0, b1, Bs, kLd, n * 8, ks * 16);
      mma_bf16_16816(acc[n], af, b0);
      mma_bf16_16816(acc[n + 1], af, b1);
    }
  }
}

// acc[16 x DP] += X Y with X [16 x 8 NT] given as accumulator fragments (rounded to bf16 here) and Y [8 NT x DP]
// row-major in shared memory (its B fragments by ldmatrix .trans).
template <int DP, int NT>
__device__ __forceinline__ void accumulate_xy(float (&acc)[DP / 8][4], const float (&x)[NT][4],
                                              const __nv_bfloat16* Y) {
  using namespace mma;
  VR_UNROLL for (int kk = 0; kk < NT / 2; kk++) {
    const uint32_t xa[4] = {pack_bf16x2(x[2 * kk][0], x[2 * kk][1]), pack_bf16x2(x[2 * kk][2], x[2 * kk][3]),
                            pack_bf16x2(x[2 * kk + 1][0], x[2 * kk + 1][1]),
                            pack_bf16x2(x[2 * kk + 1][2], x[2 * kk + 1][3])};
    VR_UNROLL for (int nd = 0; nd < DP / 8; nd += 2) {
      uint32_t y0[2], y1[2];
      ldm_b_kn(y0, y1, Y, kTcLd<DP>, nd * 8, kk * 16);
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

#if defined(VR_MMA_AVAILABLE)
// One query tile of the dK/dV kernel: this warp's 16 keys (key0 .., of the block's BLOCK keys j0 ..) against the T
// query rows i0 .. of Qs / dOs with their lse (log2 units) / Delta in lse_s / delta_s; dV += P^T dO, dK += dS^T Q.
// Reads shared memory only.
template <int DP, int T, int BLOCK>
__device__ __forceinline__ void dkdv_tile(float (&dk_acc)[DP / 8][4], float (&dv_acc)[DP / 8][4],
                                          const __nv_bfloat16* Ks, const __nv_bfloat16* Vs, const __nv_bfloat16* Qs,
                                          const __nv_bfloat16* dOs, const float* lse_s, const float* delta_s,
                                          const AttnArgs& a, const attn::Segment& sg, int warp, int64_t j0,
                                          int64_t key0, int64_t i0, float scale_log2) {
  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  float st[T / 8][4], dpt[T / 8][4];  // S^T, dP^T: rows = this warp's 16 keys, columns = T queries
  scores<DP, T / 8>(st, Ks, warp * 16, Qs);
  scores<DP, T / 8>(dpt, Vs, warp * 16, dOs);
  // Only tiles with keys past the segment's end or, causal, past the diagonal of the tile's first row test each
  // element.
  const bool masked = j0 + BLOCK > sg.Lk || (a.causal && j0 + BLOCK - 1 > i0 + sg.shift);
  VR_UNROLL for (int n = 0; n < T / 8; n++) VR_UNROLL for (int e = 0; e < 4; e++) {
      const int qi = n * 8 + 2 * t + (e & 1);
      const int64_t key = key0 + g + (e >= 2 ? 8 : 0);
      const bool vis = !masked || (key < sg.Lk && (!a.causal || key <= i0 + qi + sg.shift));
      const float p = vis && lse_s[qi] != -INFINITY ? exp2f(st[n][e] * scale_log2 - lse_s[qi]) : 0.f;
      st[n][e] = p;                               // P^T
      dpt[n][e] = p * (dpt[n][e] - delta_s[qi]);  // dS^T
    }
  accumulate_xy<DP, T / 8>(dv_acc, st, dOs);
  accumulate_xy<DP, T / 8>(dk_acc, dpt, Qs);
}

// One key tile of the dQ kernel: this warp's 16 query rows (row0 ..; lse2 / dl: rows g, g + 8) against the T keys
// j0 .. of Ks / Vs; dQ += dS K. Reads shared memory only.
template <int DP, int T>
__device__ __forceinline__ void dq_tile(float (&dq_acc)[DP / 8][4], const __nv_bfloat16* Qs, const __nv_bfloat16* dOs,
                                        const __nv_bfloat16* Ks, const __nv_bfloat16* Vs, const float (&lse2)[2],
                                        const float (&dl)[2], const AttnArgs& a, const attn::Segment& sg, int warp,
                                        int64_t row0, int64_t j0, float scale_log2) {
  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  float s[T / 8][4], dp[T / 8][4];
  scores<DP, T / 8>(s, Qs, warp * 16, Ks);
  scores<DP, T / 8>(dp, dOs, warp * 16, Vs);
  const bool masked = j0 + T > sg.Lk || (a.causal && j0 + T - 1 > row0 + sg.shift);
  VR_UNROLL for (int n = 0; n < T / 8; n++) VR_UNROLL for (int e = 0; e < 4; e++) {
      const int r = e >> 1;
      const int64_t row = row0 + g + 8 * r, key = j0 + n * 8 + 2 * t + (e & 1);
      const bool vis = !masked || (key < sg.Lk && (!a.causal || key <= row + sg.shift));
      const float p = vis && lse2[r] != -INFINITY ? exp2f(s[n][e] * scale_log2 - lse2[r]) : 0.f;
      dp[n][e] = p * (dp[n][e] - dl[r]);  // dS
    }
  accumulate_xy<DP, T / 8>(dq_acc, dp, Ks);
}
#endif

template <int DP, int W, int T, int DB>
__global__ void __launch_bounds__(32 * W)
    attention_tc_dkdv_kernel(__nv_bfloat16* dk, __nv_bfloat16* dv, const __nv_bfloat16* dout, const float* lse,
                             const float* delta, const __nv_bfloat16* q, const __nv_bfloat16* k,
                             const __nv_bfloat16* v, AttnArgs a, TcVec vec, bool vec_do) {
#if defined(VR_MMA_AVAILABLE)
  using B = BwdShape<DP, W, T, DB>;
  constexpr int kBlock = B::kBlock, kTh = B::kThreads;
  const attn::Segment sg = attn::segment(a, blockIdx.z);
  const int kvh = blockIdx.y, G = a.Hq / a.Hkv, D = a.D;
  const int64_t j0 = int64_t(blockIdx.x) * kBlock;
  if (j0 >= sg.Lk) return;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;

  CUDA_DYNAMIC_SHARED(__nv_bfloat16, smem);
  __nv_bfloat16* Ks = smem;                      // [kBlock keys][kLd]
  __nv_bfloat16* Vs = Ks + B::kB;                // [kBlock keys][kLd]
  __nv_bfloat16* Qs = Vs + B::kB;                // kBufs x [T q][kLd]
  __nv_bfloat16* dOs = Qs + B::kBufs * B::kT;    // kBufs x [T q][kLd]
  float* stats = reinterpret_cast<float*>(dOs + B::kBufs * B::kT);  // kBufs x (lse [T], Delta [T])
  const int64_t kcol = int64_t(kvh) * D;
  // All tiles arrive by cp.async: every 16-byte chunk of a tile in flight at once, where plain loads through
  // registers would wait for each before storing it. K / V land with the first query tile.
  load_rows_async<DP, kBlock, kTh>(Ks, k, a.k_stride, sg.k0 + j0, sg.k0 + sg.Lk, kcol, D, vec.k);
  load_rows_async<DP, kBlock, kTh>(Vs, v, a.v_stride, sg.k0 + j0, sg.k0 + sg.Lk, kcol, D, vec.v);
  if constexpr (!B::kDouble) mma::cp_async_commit();

  float dk_acc[DP / 8][4], dv_acc[DP / 8][4];
  VR_UNROLL for (int nd = 0; nd < DP / 8; nd++) VR_UNROLL for (int e = 0; e < 4; e++) dk_acc[nd][e] = dv_acc[nd][e] = 0.f;
  const float scale_log2 = a.scale * 1.4426950408889634f;
  const int64_t key0 = j0 + warp * 16;  // this warp's first key (segment-relative)
  // The first query row that sees key j0 is j0 - shift (causal): start at its tile.
  int64_t first = a.causal ? j0 - sg.shift : 0;
  first = first < 0 ? 0 : first / T * T;

  if constexpr (!B::kDouble) {
    float* lse_s = stats;
    float* delta_s = lse_s + T;
    for (int hh = 0; hh < G; hh++) {
      const int h = kvh * G + hh;
      for (int64_t i0 = first; i0 < sg.Lq; i0 += T) {
        __syncthreads();  // K/V are in; the previous query tile is consumed
        const int64_t qr0 = sg.q0 + i0, qlim = sg.q0 + sg.Lq, qcol = int64_t(h) * D;
        load_rows_async<DP, T, kTh>(Qs, q, a.q_stride, qr0, qlim, qcol, D, vec.q);
        load_rows_async<DP, T, kTh>(dOs, dout, a.o_stride, qr0, qlim, qcol, D, vec_do);
        mma::cp_async_commit();
        load_stats<T, kTh>(lse_s, delta_s, lse, delta, a, sg, h, i0);  // while the copies are in flight
        mma::cp_async_wait<0>();
        __syncthreads();
        // The tile's maths written out here, not through dkdv_tile: at the 255-register ceiling ptxas spills more
        // with the helper (default 64x64w4: sm_80 0 -> 8 / 24 bytes, sm_90 12 / 28 -> 24 / 52).
        float st[T / 8][4], dpt[T / 8][4];  // S^T, dP^T: rows = this warp's 16 keys, columns = T queries
        scores<DP, T / 8>(st, Ks, warp * 16, Qs);
        scores<DP, T / 8>(dpt, Vs, warp * 16, dOs);
        const bool masked = j0 + kBlock > sg.Lk || (a.causal && j0 + kBlock - 1 > i0 + sg.shift);
        VR_UNROLL for (int n = 0; n < T / 8; n++) VR_UNROLL for (int e = 0; e < 4; e++) {
            const int qi = n * 8 + 2 * t + (e & 1);
            const int64_t key = key0 + g + (e >= 2 ? 8 : 0);
            const bool vis = !masked || (key < sg.Lk && (!a.causal || key <= i0 + qi + sg.shift));
            const float p = vis && lse_s[qi] != -INFINITY ? exp2f(st[n][e] * scale_log2 - lse_s[qi]) : 0.f;
            st[n][e] = p;                               // P^T
            dpt[n][e] = p * (dpt[n][e] - delta_s[qi]);  // dS^T
          }
        accumulate_xy<DP, T / 8>(dv_acc, st, dOs);
        accumulate_xy<DP, T / 8>(dk_acc, dpt, Qs);
      }
    }
  } else {
    // The query tiles in order (head hh, rows i0 ..; after the last rows of a head the next head's first), so the
    // copies of the next tile - also across heads - overlap this tile's maths.
    auto copy_tile = [&](int hh, int64_t i0, int buf) {  // Q, dO of (hh, i0) into buffer buf (not committed)
      const int64_t qr0 = sg.q0 + i0, qlim = sg.q0 + sg.Lq, qcol = int64_t(kvh * G + hh) * D;
      load_rows_async<DP, T, kTh>(Qs + buf * B::kT, q, a.q_stride, qr0, qlim, qcol, D, vec.q);
      load_rows_async<DP, T, kTh>(dOs + buf * B::kT, dout, a.o_stride, qr0, qlim, qcol, D, vec_do);
    };
    const bool any = first < sg.Lq;
    if (any) {
      copy_tile(0, first, 0);
      load_stats<T, kTh>(stats, stats + T, lse, delta, a, sg, kvh * G, first);
    }
    mma::cp_async_commit();  // K, V, Q_0, dO_0
    mma::cp_async_wait<0>();
    __syncthreads();
    int hh = any ? 0 : G, buf = 0;
    int64_t i0 = first;
    while (hh < G) {
      int hh1 = hh;
      int64_t i1 = i0 + T;
      if (i1 >= sg.Lq) hh1++, i1 = first;
      const bool more = hh1 < G;
      // Tile (hh1, i1) into the other buffers: everyone finished reading them (the previous tile) before the last
      // barrier. Its lse / Delta row r = threadIdx.x is fetched into registers now and stored after the maths, so
      // the global loads' latency hides behind them too.
      float next_lse = -INFINITY, next_delta = 0.f;
      if (more) {
        copy_tile(hh1, i1, buf ^ 1);
        const int64_t r = threadIdx.x;
        if (r < T && i1 + r < sg.Lq) {
          const int64_t idx = int64_t(kvh * G + hh1) * a.total_q + sg.q0 + i1 + r;
          next_lse = lse[idx] * 1.4426950408889634f;
          next_delta = delta[idx];
        }
      }
      mma::cp_async_commit();
      // The maths in chunks of at most 32 query rows: a 64-row chunk's S^T, dP^T fragments (64 registers) beside the
      // two accumulators and the pipeline's state spill (64x64w4d: sm_80 64-96 / 120-148 bytes), 32 rows do not; the
      // 64-row tiles still halve the barriers and copy commits of the 32-row ones.
      constexpr int kSub = T < 32 ? T : 32;
      VR_UNROLL for (int c = 0; c < T; c += kSub) {
        if (i0 + c >= sg.Lq) break;  // rows past the segment (uniform over the block; no barrier inside)
        const __nv_bfloat16* Qb = Qs + buf * B::kT + c * B::kLd;
        const __nv_bfloat16* dOb = dOs + buf * B::kT + c * B::kLd;
        const float* st = stats + buf * 2 * T + c;
        dkdv_tile<DP, kSub, kBlock>(dk_acc, dv_acc, Ks, Vs, Qb, dOb, st, st + T, a, sg, warp, j0, key0, i0 + c,
                                    scale_log2);
      }
      if (more && threadIdx.x < T) {
        float* sn = stats + (buf ^ 1) * 2 * T;
        sn[threadIdx.x] = next_lse, sn[T + threadIdx.x] = next_delta;
      }
      mma::cp_async_wait<0>();  // the next tile is in
      __syncthreads();          // ... for everyone, and everyone is done with buffer buf before it is refilled
      hh = hh1, i0 = i1, buf ^= 1;
    }
  }
  mma::cp_async_wait<0>();  // no query tile at all: K / V must still land before the block exits
  const int64_t klim = sg.k0 + sg.Lk;
  if (dk) add_rows<DP>(dk + kcol, a.k_stride, sg.k0 + key0, klim, D, a.scale, dk_acc);
  if (dv) add_rows<DP>(dv + kcol, a.v_stride, sg.k0 + key0, klim, D, 1.0f, dv_acc);
  (void)lane, (void)g, (void)t;
#else
  (void)dk, (void)dv, (void)dout, (void)lse, (void)delta, (void)q, (void)k, (void)v, (void)a, (void)vec, (void)vec_do;
#endif
}

template <int DP, int W, int T, int DB>
__global__ void __launch_bounds__(32 * W)
    attention_tc_dq_kernel(__nv_bfloat16* dq, const __nv_bfloat16* dout, const float* lse, const float* delta,
                           const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, AttnArgs a,
                           TcVec vec, bool vec_do) {
#if defined(VR_MMA_AVAILABLE)
  using B = BwdShape<DP, W, T, DB>;
  constexpr int kBlock = B::kBlock, kTh = B::kThreads;
  const attn::Segment sg = attn::segment(a, blockIdx.z);
  const int h = blockIdx.y, kvh = h / (a.Hq / a.Hkv), D = a.D;
  const int64_t i0 = int64_t(blockIdx.x) * kBlock;
  if (i0 >= sg.Lq) return;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4;

  CUDA_DYNAMIC_SHARED(__nv_bfloat16, smem);
  __nv_bfloat16* Qs = smem;                     // [kBlock q][kLd]
  __nv_bfloat16* dOs = Qs + B::kB;              // [kBlock q][kLd]
  __nv_bfloat16* Ks = dOs + B::kB;              // kBufs x [T keys][kLd]
  __nv_bfloat16* Vs = Ks + B::kBufs * B::kT;    // kBufs x [T keys][kLd]
  const int64_t qcol = int64_t(h) * D, kcol = int64_t(kvh) * D;
  // cp.async as in the dK/dV kernel; Q / dO land with the first key tile.
  load_rows_async<DP, kBlock, kTh>(Qs, q, a.q_stride, sg.q0 + i0, sg.q0 + sg.Lq, qcol, D, vec.q);
  load_rows_async<DP, kBlock, kTh>(dOs, dout, a.o_stride, sg.q0 + i0, sg.q0 + sg.Lq, qcol, D, vec_do);
  if constexpr (!B::kDouble) mma::cp_async_commit();

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
  const int64_t last_row = (i0 + kBlock < sg.Lq ? i0 + kBlock : sg.Lq) - 1;
  const int64_t kend = a.causal ? (last_row + sg.shift + 1 < sg.Lk ? last_row + sg.shift + 1 : sg.Lk) : sg.Lk;

  if constexpr (!B::kDouble) {
    for (int64_t j0 = 0; j0 < kend; j0 += T) {
      __syncthreads();  // Q/dO are in; the previous key tile is consumed
      load_rows_async<DP, T, kTh>(Ks, k, a.k_stride, sg.k0 + j0, sg.k0 + sg.Lk, kcol, D, vec.k);
      load_rows_async<DP, T, kTh>(Vs, v, a.v_stride, sg.k0 + j0, sg.k0 + sg.Lk, kcol, D, vec.v);
      mma::cp_async_commit();
      mma::cp_async_wait<0>();
      __syncthreads();
      dq_tile<DP, T>(dq_acc, Qs, dOs, Ks, Vs, lse2, dl, a, sg, warp, row0, j0, scale_log2);
    }
  } else {
    const int64_t ntiles = kend > 0 ? (kend + T - 1) / T : 0;
    auto copy_tile = [&](int64_t jt, int buf) {  // K, V of key tile jt into buffer buf (not committed)
      const int64_t kr0 = sg.k0 + jt * T, klim = sg.k0 + sg.Lk;
      load_rows_async<DP, T, kTh>(Ks + buf * B::kT, k, a.k_stride, kr0, klim, kcol, D, vec.k);
      load_rows_async<DP, T, kTh>(Vs + buf * B::kT, v, a.v_stride, kr0, klim, kcol, D, vec.v);
    };
    if (ntiles > 0) copy_tile(0, 0);
    mma::cp_async_commit();  // Q, dO, K_0, V_0
    mma::cp_async_wait<0>();
    __syncthreads();
    for (int64_t jt = 0; jt < ntiles; jt++) {
      const int buf = int(jt & 1);
      if (jt + 1 < ntiles) copy_tile(jt + 1, buf ^ 1);  // the other buffer: everyone finished it before the barrier
      mma::cp_async_commit();
      dq_tile<DP, T>(dq_acc, Qs, dOs, Ks + buf * B::kT, Vs + buf * B::kT, lse2, dl, a, sg, warp, row0, jt * T,
                     scale_log2);
      mma::cp_async_wait<0>();  // tile jt + 1 is in
      __syncthreads();          // ... for everyone, and everyone is done with buffer buf before tile jt + 2 refills it
    }
  }
  mma::cp_async_wait<0>();  // no key tile at all: Q / dO must still land before the block exits
  add_rows<DP>(dq + qcol, a.q_stride, sg.q0 + row0, sg.q0 + sg.Lq, D, a.scale, dq_acc);
  (void)lane;
#else
  (void)dq, (void)dout, (void)lse, (void)delta, (void)q, (void)k, (void)v, (void)a, (void)vec, (void)vec_do;
#endif
}

bool vec_ok(const void* p, int64_t stride, int D) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0 && stride % 8 == 0 && D % 8 == 0;
}

template <int DP, int MT, int W, int KN, int ST>
void launch_tc(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a, Stream s) {
  using F = FwdShape<DP, MT, W, KN, ST>;
  auto* kernel = attention_tc_forward_kernel<DP, MT, W, KN, ST>;
  attn::allow_smem(kernel, F::kSmemBytes, "attention_tc_forward");
  const dim3 grid(unsigned((a.max_seqlen_q + F::kRows - 1) / F::kRows), unsigned(a.Hq), unsigned(a.nseq));
  const TcVec vec{vec_ok(q, a.q_stride, a.D), vec_ok(k, a.k_stride, a.D), vec_ok(v, a.v_stride, a.D)};
  check_launch(cuda_launch(kernel, grid, dim3(F::kThreads), F::kSmemBytes, s, dptr(out), lse, dptr(q), dptr(k),
                           dptr(v), a, vec),
               "attention_tc_forward");
}

// cudaFuncSetAttribute for a shape over the 99 KiB every sm_80+ GPU allows (the double-buffered 64x64w4d, 128x32w8d:
// sm_80 163 KiB, sm_90 227 KiB), refused in one line naming the cause where this GPU allows less (sm_86 / sm_89).
// Only a variant named in VREFLECT_ATTENTION_TILE_BWD gets here on such a GPU: auto picks one that fits (auto_tile).
template <class K>
void allow_tc_smem(K* kernel, size_t bytes, const char* op) {
  if (bytes <= kTcMaxSmem) return attn::allow_smem(kernel, bytes, op);
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)) != cudaSuccess) {
    (void)cudaGetLastError();
    fail(op, ": this tile variant needs ", bytes / 1024, " KiB of shared memory per block, more than this GPU allows ",
         "(sm_80 163, sm_90 227, sm_86 / sm_89 99 KiB): set VREFLECT_ATTENTION_TILE_BWD=auto (it picks one that ",
         "fits) or to 64x32w4d or one without d");
  }
}

template <int DP, int W, int T, int DB>
void launch_tc_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const float* lse, const float* delta,
                        const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a, Stream s) {
  using B = BwdShape<DP, W, T, DB>;
  const TcVec vec{vec_ok(q, a.q_stride, a.D), vec_ok(k, a.k_stride, a.D), vec_ok(v, a.v_stride, a.D)};
  const bool vec_do = vec_ok(dout, a.o_stride, a.D);
  if ((dk || dv) && a.max_seqlen_k > 0) {
    auto* kernel = attention_tc_dkdv_kernel<DP, W, T, DB>;
    allow_tc_smem(kernel, B::kDkdv, "attention_tc_backward dk/dv");
    const dim3 grid(unsigned((a.max_seqlen_k + B::kBlock - 1) / B::kBlock), unsigned(a.Hkv), unsigned(a.nseq));
    check_launch(cuda_launch(kernel, grid, dim3(B::kThreads), B::kDkdv, s, dptr(dk), dptr(dv), dptr(dout), lse, delta,
                             dptr(q), dptr(k), dptr(v), a, vec, vec_do),
                 "attention_tc_backward dk/dv");
  }
  if (dq && a.max_seqlen_q > 0) {
    auto* kernel = attention_tc_dq_kernel<DP, W, T, DB>;
    allow_tc_smem(kernel, B::kDq, "attention_tc_backward dq");
    const dim3 grid(unsigned((a.max_seqlen_q + B::kBlock - 1) / B::kBlock), unsigned(a.Hq), unsigned(a.nseq));
    check_launch(cuda_launch(kernel, grid, dim3(B::kThreads), B::kDq, s, dptr(dq), dptr(dout), lse, delta, dptr(q),
                             dptr(k), dptr(v), a, vec, vec_do),
                 "attention_tc_backward dq");
  }
}

// ---- tile-shape variants ------------------------------------------------------------------------------------
// Head dims 81..128 (DP = 128, the 7B's) have several instantiated shapes, picked by VREFLECT_ATTENTION_TILE_FWD /
// _BWD; smaller head dims keep the first (default) shape. Names: "<rows>x<keys>w<warps>" - forward: query rows per
// block x keys per K/V tile, warps, and a final "s" for the staggered pipeline; backward: rows per block (keys in
// dK/dV, queries in dQ) x the inner tile.
using FwdLaunch = void (*)(bf16*, float*, const bf16*, const bf16*, const bf16*, const AttnArgs&, Stream);
using BwdLaunch = void (*)(bf16*, bf16*, bf16*, const bf16*, const float*, const float*, const bf16*, const bf16*,
                           const bf16*, const AttnArgs&, Stream);
struct FwdVariant {
  int rows, keys, warps;
  bool staggered;
  size_t smem;  // dynamic shared memory per block at DP = 128
  FwdLaunch launch;
};
struct BwdVariant {
  int rows, inner, warps;
  bool double_buffered;  // "d": the inner tiles double-buffered (DB = 1); head dims <= 80 then run 64x64w4d too
  size_t smem;           // the larger of the dK/dV and dQ kernels' shared memory per block at DP = 128
  BwdLaunch launch;
};
template <int MT, int W, int KN, int ST>
constexpr FwdVariant fwd128() {
  return {16 * MT * W, KN, W, ST == 1, FwdShape<128, MT, W, KN, ST>::kSmemBytes, launch_tc<128, MT, W, KN, ST>};
}
template <int W, int T, int DB>
constexpr BwdVariant bwd128() {
  return {16 * W, T, W, DB == 1, BwdShape<128, W, T, DB>::kSmemBytes, launch_tc_backward<128, W, T, DB>};
}
// Every instantiated shape; the order is the names' listing order (attention_tc_tiles), not a preference (that is
// kFwdPreference / kBwdPreference below). Shapes over kTcMaxSmem do not compile (static_assert): forward
// 128x128w8s, 256x64w8s, and double-buffered 64x128w4, 128x64w4, 128x64w8, 256x32w8; backward 128x64w8, 64x128w4
// single-buffered. The backward's double-buffered ("d") shapes are held to sm_80's 163 KiB instead: 64x32w4d fits
// 99 KiB, 64x64w4d, 128x32w8d (103 KiB) and 128x64w8d (137 KiB) run on sm_80 / sm_90 only (FlashAttention-2's
// inner-loop overlap; the GPU session picks).
const FwdVariant kFwdVariants[] = {
    fwd128<1, 4, 64, 0>(),   // 64x64w4: one m-tile per warp, K/V double-buffered (85 KiB)
    fwd128<1, 4, 64, 1>(),   // 64x64w4s: the same, staggered (51 KiB): the two pipelines side by side
    fwd128<1, 4, 32, 0>(),   // 64x32w4
    fwd128<1, 4, 128, 1>(),  // 64x128w4s
    fwd128<2, 4, 32, 0>(),   // 128x32w4: two m-tiles per warp (68 KiB)
    fwd128<2, 4, 64, 1>(),   // 128x64w4s: FlashAttention-2's forward shape at D = 128 (68 KiB)
    fwd128<1, 8, 32, 0>(),   // 128x32w8
    fwd128<1, 8, 64, 1>(),   // 128x64w8s
    fwd128<2, 8, 32, 1>(),   // 256x32w8s (85 KiB)
};
const BwdVariant kBwdVariants[] = {
    bwd128<4, 64, 0>(),  // 64x64w4 (68.5 KiB)
    bwd128<4, 32, 0>(),  // 64x32w4
    bwd128<8, 32, 0>(),  // 128x32w8 (FlashAttention-2 walks 128 keys with 8 warps; single-buffered, its 64-row
                         // inner tile is over the 99 KiB budget)
    bwd128<4, 64, 1>(),  // 64x64w4d: the default shape, inner tiles double-buffered (103 KiB)
    bwd128<4, 32, 1>(),  // 64x32w4d (68.5 KiB: every sm_80+ GPU)
    bwd128<8, 32, 1>(),  // 128x32w8d (102.5 KiB)
    bwd128<8, 64, 1>(),  // 128x64w8d: FlashAttention-2's 128 x 64, 8 warps (137 KiB)
};

// What `auto` (or the variable unset) runs: the first of these whose shared memory fits the device's opt-in limit
// per block (cudaDevAttrMaxSharedMemoryPerBlockOptin: 227 KiB sm_90, 163 sm_80 / sm_87, 99 sm_86 / sm_89 / sm_120),
// so the default never refuses a GPU. Today's preference is today's shape alone: nothing changes on any GPU until a
// GPU session measures a better one (kernels README, "Tile-shape variants"); a faster shape that needs more shared
// memory goes in front of it, e.g. {"128x64w8d", "64x32w4d", "64x64w4"} runs 128x64w8d on sm_80 / sm_90 and
// 64x32w4d on a 99 KiB GPU. The last entry must fit 99 KiB (every sm_80+ GPU; cuda_attention_tc_tile_auto checks).
const char* const kFwdPreference[] = {"64x64w4"};
const char* const kBwdPreference[] = {"64x64w4"};

std::string variant_name(int rows, int inner, int warps) {
  return std::to_string(rows) + "x" + std::to_string(inner) + "w" + std::to_string(warps);
}
std::vector<std::string> variant_names(bool backward) {
  std::vector<std::string> r;
  if (backward)
    for (const BwdVariant& v : kBwdVariants)
      r.push_back(variant_name(v.rows, v.inner, v.warps) + (v.double_buffered ? "d" : ""));
  else
    for (const FwdVariant& v : kFwdVariants) r.push_back(variant_name(v.rows, v.keys, v.warps) + (v.staggered ? "s" : ""));
  return r;
}
size_t variant_smem(bool backward, size_t i) { return backward ? kBwdVariants[i].smem : kFwdVariants[i].smem; }
int variant_index(bool backward, const std::string& name) {
  const std::vector<std::string> names = variant_names(backward);
  for (size_t i = 0; i < names.size(); i++)
    if (names[i] == name) return int(i);
  return -1;
}
std::vector<std::string> with_auto(std::vector<std::string> names) {
  names.insert(names.begin(), "auto");
  return names;
}

// VREFLECT_ATTENTION_TILE_FWD / _BWD: index 0 "auto" (unset too), i > 0 the variant i - 1.
EnvSwitch g_tile_switch[2] = {{"VREFLECT_ATTENTION_TILE_FWD", with_auto(variant_names(false))},
                              {"VREFLECT_ATTENTION_TILE_BWD", with_auto(variant_names(true))}};

// The preference auto walks: the compiled-in list, or one set by attention_tc_set_tile_preference (tests).
std::mutex g_preference_mutex;
std::vector<std::string> g_preference_override[2];

std::vector<std::string> preference(bool backward) {
  {
    std::lock_guard<std::mutex> lock(g_preference_mutex);
    if (!g_preference_override[backward].empty()) return g_preference_override[backward];
  }
  std::vector<std::string> r;
  if (backward) r.assign(std::begin(kBwdPreference), std::end(kBwdPreference));
  else r.assign(std::begin(kFwdPreference), std::end(kFwdPreference));
  return r;
}

// One attribute of the current device, asked per call (a runtime table lookup; each GPU of a process may differ);
// `fallback` when it cannot be read (the error is cleared so the next launch does not report it).
int device_attribute(cudaDeviceAttr attr, int fallback) {
  int dev = 0, value = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&value, attr, dev) != cudaSuccess || value <= 0) {
    (void)cudaGetLastError();
    return fallback;
  }
  return value;
}

// The opt-in shared memory per block; 99 KiB, what every sm_80+ GPU allows, when it cannot be read.
size_t device_smem_optin() {
  return size_t(device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, int(kTcMaxSmem)));
}

// auto's last pick per direction and the opt-in limit it was made for, (optin << 8) | (index + 1) (0: none), so an
// attention call does not walk the names again; a test's preference change clears it.
std::atomic<uint64_t> g_auto_pick[2] = {{0}, {0}};

// The variant auto runs where `optin` bytes of shared memory per block are allowed: the first of the preference
// that fits; none fitting (only a preference set by a test can do that) is a one-line error.
int auto_tile(bool backward, size_t optin) {
  const uint64_t cached = g_auto_pick[backward].load(std::memory_order_relaxed);
  if (cached != 0 && (cached >> 8) == optin) return int(cached & 0xFFu) - 1;
  const std::vector<std::string> pref = preference(backward);
  for (const std::string& name : pref) {
    const int i = variant_index(backward, name);
    if (i >= 0 && variant_smem(backward, size_t(i)) <= optin) {
      g_auto_pick[backward].store((uint64_t(optin) << 8) | uint64_t(i + 1), std::memory_order_relaxed);
      return i;
    }
  }
  std::string all;
  for (const std::string& n : pref) all += (all.empty() ? "" : ", ") + n;
  fail(g_tile_switch[backward].var(), "=auto: no variant of the preference (", all, ") fits this GPU's ",
       optin / 1024, " KiB of shared memory per block");
}

// The variant index a call runs where `optin` bytes are allowed: the named one, or auto's pick. Reads (and checks)
// the variable.
int tile_at(bool backward, size_t optin) {
  const int sw = g_tile_switch[backward].index();
  return sw > 0 ? sw - 1 : auto_tile(backward, optin);
}
// ... on the current device.
int env_tile(bool backward) { return tile_at(backward, device_smem_optin()); }

// VREFLECT_ATTENTION: index into AttnKernelPath's names below (read once).
EnvSwitch g_path_switch{"VREFLECT_ATTENTION", {"auto", "wgmma", "tc", "scalar"}};

AttnKernelPath env_path() {
  constexpr AttnKernelPath kPaths[] = {AttnKernelPath::Auto, AttnKernelPath::Wgmma, AttnKernelPath::TensorCore,
                                      AttnKernelPath::Scalar};
  return kPaths[g_path_switch.index()];
}

#if !defined(VR_CUDA_EMULATED)
// The compute capability major of the current device (0 when it cannot be read).
int device_major() { return device_attribute(cudaDevAttrComputeCapabilityMajor, 0); }
#endif

}  // namespace

AttnKernelPath attention_kernel_resolve(AttnKernelPath want, int D, bool bf16_storage, Stream s) {
  const bool env = want == AttnKernelPath::Auto;
  if (env) want = env_path();
  // The tile switches are read (and a bad value refused in one line) here, where every attention call chooses
  // its path: a typo must not pass silently because this run's head dim or device never takes the tiled kernels.
  for (EnvSwitch& t : g_tile_switch) t.index();  // (the variables only: auto's pick is made where a kernel runs)
  attention_wgmma_tile();
  attention_wgmma_backward_tile();
  if (want == AttnKernelPath::Scalar) return want;
  const bool wg = want == AttnKernelPath::Wgmma;
  const char* who = wg ? (env ? "VREFLECT_ATTENTION=wgmma" : "attention: the wgmma path")
                       : (env ? "VREFLECT_ATTENTION=tc" : "attention: the tensor-core path");
  const bool shape_ok = bf16_storage && D > 0 && D <= kTcMaxD;
#if defined(VR_CUDA_EMULATED)
  (void)s;
  if (want == AttnKernelPath::Auto) return AttnKernelPath::Scalar;  // the modelled mma is slow: only when asked
  const int major = wg ? 9 : 8;
#else
  const int major = device_major();
  if (want == AttnKernelPath::Auto) {
    if (!shape_ok || major < 8) return AttnKernelPath::Scalar;
    // Hopper: the wgmma kernels where they pay (D 65..128; smaller head dims would be padded to 128) and the
    // device passed the self-check; otherwise mma.sync.
    if (major == 9 && D > 64 && attention_wgmma_state(s) == WgmmaState::Ready) return AttnKernelPath::Wgmma;
    return AttnKernelPath::TensorCore;
  }
#endif
  VR_CHECK(bf16_storage, who, " needs bf16 storage (fp32 tensors run the scalar kernel)");
  VR_CHECK(shape_ok, who, " supports head dims up to ", kTcMaxD, " (got D=", D, ")");
  if (wg) {
    VR_CHECK(major == 9, who, " needs an sm_90 (Hopper) GPU (this device is sm_", major, "x)");
#if !defined(VR_CUDA_EMULATED)
    const WgmmaState st = attention_wgmma_state(s);
    VR_CHECK(st != WgmmaState::NoImage, who, " needs a build with sm_90a code (CMAKE_CUDA_ARCHITECTURES with 90a)");
    VR_CHECK(st != WgmmaState::CheckFailed, who, ": the wgmma self-check failed on this GPU (see stderr)");
    VR_CHECK(st != WgmmaState::Unchecked, who, ": not self-checked yet and the first call is inside a graph capture");
#endif
    return AttnKernelPath::Wgmma;
  }
  VR_CHECK(major >= 8, who, " needs an sm_80+ GPU (this device is sm_", major, "x)");
  return AttnKernelPath::TensorCore;
}

const char* attention_kernel_path_name(AttnKernelPath path) {
  switch (path) {
    case AttnKernelPath::Scalar: return "scalar";
    case AttnKernelPath::TensorCore: return "tensor-core";
    case AttnKernelPath::Wgmma: return "wgmma";
    default: return "auto";
  }
}

std::vector<std::string> attention_tc_tiles(bool backward) { return variant_names(backward); }

std::string attention_tc_tile(bool backward) { return variant_names(backward)[size_t(env_tile(backward))]; }

std::string attention_tc_tile_at(bool backward, size_t smem_optin_bytes) {
  return variant_names(backward)[size_t(tile_at(backward, smem_optin_bytes))];
}

std::vector<std::string> attention_tc_tile_preference(bool backward) { return preference(backward); }

void attention_tc_set_tile_preference(bool backward, const std::vector<std::string>& names) {
  for (const std::string& n : names)
    VR_CHECK(variant_index(backward, n) >= 0, "attention_tc_set_tile_preference: ", n, " is not a ",
             backward ? "backward" : "forward", " tile variant");
  std::lock_guard<std::mutex> lock(g_preference_mutex);
  g_preference_override[backward] = names;
  g_auto_pick[backward].store(0, std::memory_order_relaxed);
}

void attention_forward_tc(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a,
                          Stream s) {
  const FwdLaunch tiled = kFwdVariants[env_tile(false)].launch;  // read (and checked) whatever D is
  if (a.D <= 32) return launch_tc<32, 1, 4, 64, 0>(out, lse, q, k, v, a, s);
  if (a.D <= 64) return launch_tc<64, 1, 4, 64, 0>(out, lse, q, k, v, a, s);
  if (a.D <= 80) return launch_tc<80, 1, 4, 64, 0>(out, lse, q, k, v, a, s);
  return tiled(out, lse, q, k, v, a, s);
}

void attention_backward_tc(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const float* lse, const float* delta,
                           const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a, Stream s) {
  const BwdVariant& tiled = kBwdVariants[env_tile(true)];
  // Head dims <= 80 keep the 64x64w4 shape; a double-buffered ("d") variant's pipeline applies to them too
  // (64x64w4d: 68.5 KiB at DP 80), so one switch moves the whole backward to it.
  if (a.D <= 80) {
    const auto pick = [&](auto single, auto dbl) { return tiled.double_buffered ? dbl : single; };
    BwdLaunch small;
    if (a.D <= 32) small = pick(launch_tc_backward<32, 4, 64, 0>, launch_tc_backward<32, 4, 64, 1>);
    else if (a.D <= 64) small = pick(launch_tc_backward<64, 4, 64, 0>, launch_tc_backward<64, 4, 64, 1>);
    else small = pick(launch_tc_backward<80, 4, 64, 0>, launch_tc_backward<80, 4, 64, 1>);
    return small(dq, dk, dv, dout, lse, delta, q, k, v, a, s);
  }
  return tiled.launch(dq, dk, dv, dout, lse, delta, q, k, v, a, s);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
