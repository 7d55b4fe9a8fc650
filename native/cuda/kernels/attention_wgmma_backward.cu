// Hopper (sm_90a) flash-attention backward by wgmma (wgmma.cuh): the semantics of attention_backward_tc
// (attention_tc.cu) - varlen cu_seqlens, GQA, bottom-right causal, rows that see no key (lse -inf: no gradient),
// lse / Delta given, dq / dk / dv ACCUMULATED (+=, any may be null) with the strides of q / k / v - for bf16 and
// head dims D <= 128 that are multiples of 8 (padded to 128 columns with zeros; meant for 65..128, the 7B's 128).
// Same math as the mma.sync backward: P = exp(scale Q K^T - lse), dV += P^T dO, dP = dO V^T, dS = P (dP - Delta),
// dK += scale dS^T Q, dQ += scale dS K; P and dS rounded to bf16 as operands, fp32 sums.
//
// Block shape: a warpgroup (128 threads) owns 64 rows - keys in the dK/dV kernel, query rows in the dQ kernel - and
// walks the other side in tiles of 64; a block holds WG = 2 warpgroups (128 rows sharing every inner tile: half the
// inner-tile traffic per flop; the default "128x64wg2") or WG = 1 ("64x64wg1"), by VREFLECT_ATTENTION_TILE_WGMMA_BWD. Why
// not more rows per warpgroup: a wgmma's M is 64 per warpgroup, and the dK/dV kernel already holds two 64 x 128 fp32
// accumulators (dK, dV: 128 registers per thread) plus S^T, dP^T (64) and the bf16 A fragments (32): 254 registers
// at sm_90a (ptxas 13.0, no spill), so a second m-tile per warpgroup does not fit.
//   dK/dV: S^T = K Q^T and dP^T = V dO^T (SS: A = the warpgroup's K / V rows, B = the Q / dO tile K-major, N = 64
//          queries, 8 k-steps over d); their accumulators (rows = keys) give P^T and dS^T, rounded to bf16 IN
//          REGISTERS as the A fragments of dV += P^T dO and dK += dS^T Q (RS, N = 128 = d, 4 k-steps over queries,
//          B = the same dO / Q tiles read MN-major through the transpose bit).
//   dQ:    S = Q K^T, dP = dO V^T (SS: A = the warpgroup's Q / dO rows, B = the key tile K-major), dS as the A
//          fragment of dQ += dS K (RS, B = the K tile MN-major).
// Every tile is a [64 rows][128 d] bf16 array in the no-swizzle core-matrix layout (wgmma::core_offset, 2048 bytes
// per 8-row group): K-major with rows as M / N, MN-major with rows as K - one copy serves both uses. Tiles arrive by
// cp.async (16-byte chunks are contiguous in that layout; chunk c of a tile is wgmma::tile_chunk(c), shared offset
// 16 c: no bank conflicts, whole 64-byte global pieces per row), double-buffered: tile i + 1 is copied while tile i is
// computed; each thread fences its landed copies into the async proxy (fence.proxy.async) before the barrier that
// precedes the wgmma reads, and every thread waits for its ops (wait_group 0) before the barrier after which the
// buffer is refilled. Within a tile the S / dP groups overlap the softmax work: S is waited for first and P
// computed while dP is still in flight; dV and dK are issued together once both A fragments are packed.
// Shared memory: dK/dV (2 WG + 4) tiles x 16 KiB (K, V: WG tiles each; 2 x Q, 2 x dO) + 2 x 64 lse / Delta = 129 /
// 97.25 KiB for WG = 2 / 1; dQ (2 WG + 4) tiles (Q, dO: WG each; 2 x K, 2 x V) = 128 / 96 KiB.
// Requirements (a one-line error otherwise): bf16, D % 8 == 0 and D <= 128, q / k / v / dout 16-byte aligned with
// row strides (q_stride, k_stride, v_stride, o_stride) multiples of 8 elements (every copy is a 16-byte cp.async).
// Outside sm_90a images (sm_80, plain sm_90) and the emulator the kernels are stubs that write nothing: the caller
// must check wgmma_image_available() first, and attention_wgmma_backward_takes() to fall back instead of throwing.

#include <atomic>
#include <cstdlib>
#include <string>

#include "cuda/kernels/attention_common.cuh"
#include "cuda/kernels/env_switch.h"
#include "cuda/kernels/mma.cuh"
#include "cuda/kernels/wgmma.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kWgDP = 128;                            // padded head dim
constexpr int kWgRows = 64;                           // rows per block and per inner tile (a wgmma's M)
constexpr size_t kWgTile = size_t(kWgRows) * kWgDP;   // bf16 per tile (16 KiB)
// Shared memory of a block of WG warpgroups: dK/dV: K, V (WG tiles each), 2 x Q, 2 x dO, 2 x lse / Delta; dQ: Q, dO
// (WG tiles each), 2 x K, 2 x V.
template <int WG>
constexpr size_t kWgDkdvSmem = (2 * WG + 4) * kWgTile * sizeof(__nv_bfloat16) + 4 * kWgRows * sizeof(float);
template <int WG>
constexpr size_t kWgDqSmem = (2 * WG + 4) * kWgTile * sizeof(__nv_bfloat16);

#if defined(VR_WGMMA_AVAILABLE)
constexpr uint32_t kWgGroup = kWgDP / 8 * 128;  // bytes per 8-row group of a core-matrix tile (2048)

// Rows r0 .. r0 + ROWS - 1 (absolute; zero at rows >= limit and columns >= D) of a [rows, stride] bf16 matrix, head
// columns col0 .., into a core-matrix tile by cp.async, by THREADS threads (the caller commits). D % 8 == 0: a chunk
// is all in or out. A 128-row tile is two 64-row tiles back to back (8-row groups are contiguous).
template <int ROWS, int THREADS>
__device__ __forceinline__ void copy_tile(__nv_bfloat16* tile, const __nv_bfloat16* src, int64_t stride, int64_t r0,
                                          int64_t limit, int64_t col0, int D) {
  for (int c = threadIdx.x; c < ROWS * kWgDP / 8; c += THREADS) {
    const wgmma::TileChunk ch = wgmma::tile_chunk(c, kWgDP);  // shared offset 16 c: no bank conflict
    const int64_t row = r0 + ch.row;
    const bool ok = row < limit && ch.col < D;
    mma::cp_async16(tile + 8 * c, ok ? src + row * stride + col0 + ch.col : src, ok);
  }
}

// lse (in log2 units) and Delta of query rows i0 .. i0 + 63 (segment-relative) of head h; past the segment -inf, 0.
__device__ __forceinline__ void copy_stats(float* lse_s, float* delta_s, const float* lse, const float* delta,
                                           const AttnArgs& a, const attn::Segment& sg, int h, int64_t i0) {
  for (int r = threadIdx.x; r < kWgRows; r += int(blockDim.x)) {
    const bool ok = i0 + r < sg.Lq;
    const int64_t idx = int64_t(h) * a.total_q + sg.q0 + i0 + r;
    lse_s[r] = ok ? lse[idx] * 1.4426950408889634f : -INFINITY;
    delta_s[r] = ok ? delta[idx] : 0.f;
  }
}

// acc[64 x 64] = A B^T over the 128 columns: A = a tile's 64 rows, B = another tile's 64 rows (both K-major).
__device__ __forceinline__ void issue_scores(float (&acc)[32], const __nv_bfloat16* A, const __nv_bfloat16* B) {
  VR_UNROLL for (int ks = 0; ks < kWgDP / 16; ks++)  // k-step ks: core columns 2 ks, 2 ks + 1 (256 bytes further)
      wgmma::mma_ss<64, false>(acc, wgmma::desc_k_major(A + 128 * ks, kWgGroup),
                               wgmma::desc_k_major(B + 128 * ks, kWgGroup), ks > 0);
}

// The A fragments (bf16 pairs) of k-steps 0..3 from a 64 x 64 accumulator: k-step j = 8-column blocks 2j, 2j + 1.
__device__ __forceinline__ void to_a_fragments(uint32_t (&af)[4][4], const float (&x)[32]) {
  VR_UNROLL for (int j = 0; j < 4; j++) VR_UNROLL for (int i = 0; i < 4; i++)
      af[j][i] = mma::pack_bf16x2(x[8 * j + 2 * i], x[8 * j + 2 * i + 1]);
}

// acc[64 x 128] += X Y: X = A fragments of a 64 x 64 product, Y = a [64][128] tile read MN-major (rows = K).
__device__ __forceinline__ void issue_xy(float (&acc)[64], const uint32_t (&xa)[4][4], const __nv_bfloat16* Y) {
  VR_UNROLL for (int j = 0; j < 4; j++)  // k-step j: rows 16 j .. 16 j + 15 = row groups 2 j, 2 j + 1
      wgmma::mma_rs<128, true>(acc, xa[j], wgmma::desc_mn_major(Y + 16 * j * kWgDP, kWgGroup), true);
}

// This thread's index in its warpgroup (the fragment layouts' 32 w + 4 g + t).
__device__ __forceinline__ int wg_lane() { return int(threadIdx.x) % wgmma::kWarpgroup; }

template <int R>
__device__ __forceinline__ void fence_regs(uint32_t (&r)[R][4]) {
  VR_UNROLL for (int j = 0; j < R; j++) VR_UNROLL for (int i = 0; i < 4; i++) wgmma::fence_operand(r[j][i]);
}

// dst rows (bf16) += factor * a warpgroup's 64 x 128 accumulator: its row r (< 64) is absolute row r0 + r, columns < D;
// rows >= limit untouched.
__device__ __forceinline__ void add_rows64(__nv_bfloat16* base, int64_t stride, int64_t r0, int64_t limit, int D,
                                           float factor, const float (&acc)[64]) {
  using namespace dev;
  const int w = wg_lane() / 32, g = (wg_lane() % 32) / 4, t = wg_lane() % 4;
  VR_UNROLL for (int half = 0; half < 2; half++) {
    const int64_t row = r0 + 16 * w + g + 8 * half;
    if (row >= limit) continue;
    __nv_bfloat16* p = base + row * stride;
    VR_UNROLL for (int nb = 0; nb < kWgDP / 8; nb++) VR_UNROLL for (int e = 0; e < 2; e++) {
        const int c = 8 * nb + 2 * t + e;
        if (c < D) p[c] = from_f32<__nv_bfloat16>(to_f32(p[c]) + factor * acc[4 * nb + 2 * half + e]);
      }
  }
}
#endif

// ---- dK / dV ----------------------------------------------------------------------------------------------------
template <int WG>
__global__ void __launch_bounds__(128 * WG)
    attention_wgmma_dkdv_kernel(__nv_bfloat16* dk, __nv_bfloat16* dv, const __nv_bfloat16* dout, const float* lse,
                                const float* delta, const __nv_bfloat16* q, const __nv_bfloat16* k,
                                const __nv_bfloat16* v, AttnArgs a) {
#if defined(VR_WGMMA_AVAILABLE)
  const attn::Segment sg = attn::segment(a, blockIdx.z);
  constexpr int kTh = 128 * WG;
  const int kvh = blockIdx.y, G = a.Hq / a.Hkv, D = a.D;
  const int64_t j0 = int64_t(blockIdx.x) * kWgRows * WG;  // the block's first key; this warpgroup's: jw
  if (j0 >= sg.Lk) return;
  const int wg = int(threadIdx.x) / wgmma::kWarpgroup;
  const int w = wg_lane() / 32, g = (wg_lane() % 32) / 4, t = wg_lane() % 4;
  const int64_t jw = j0 + int64_t(wg) * kWgRows;

  CUDA_DYNAMIC_SHARED(__nv_bfloat16, smem);
  __nv_bfloat16* Ks = smem;                  // [64 WG keys][128], core-matrix layout
  __nv_bfloat16* Vs = Ks + WG * kWgTile;     // [64 WG keys][128]
  __nv_bfloat16* Qs = Vs + WG * kWgTile;     // 2 x [64 q][128]
  __nv_bfloat16* dOs = Qs + 2 * kWgTile;     // 2 x [64 q][128]
  float* lse_s = reinterpret_cast<float*>(dOs + 2 * kWgTile);  // 2 x [64]
  float* delta_s = lse_s + 2 * kWgRows;                        // 2 x [64]
  const int64_t kcol = int64_t(kvh) * D, klim = sg.k0 + sg.Lk, qlim = sg.q0 + sg.Lq;

  // Query tiles: the first query row that sees key j0 is j0 - shift (causal); every head of the group walks the
  // same ones. Tile n of the walk: head kvh G + n / per_head, rows first + (n % per_head) 64.
  int64_t first = a.causal ? j0 - sg.shift : 0;
  first = first < 0 ? 0 : first / kWgRows * kWgRows;
  const int per_head = first < sg.Lq ? int((sg.Lq - first + kWgRows - 1) / kWgRows) : 0;
  const int ntiles = per_head * G;
  auto fetch = [&](int n, int buf) {
    const int h = kvh * G + int(n / per_head);
    const int64_t i0 = first + (n % per_head) * kWgRows, qcol = int64_t(h) * D;
    copy_tile<kWgRows, kTh>(Qs + buf * kWgTile, q, a.q_stride, sg.q0 + i0, qlim, qcol, D);
    copy_tile<kWgRows, kTh>(dOs + buf * kWgTile, dout, a.o_stride, sg.q0 + i0, qlim, qcol, D);
    copy_stats(lse_s + buf * kWgRows, delta_s + buf * kWgRows, lse, delta, a, sg, h, i0);
  };
  copy_tile<kWgRows * WG, kTh>(Ks, k, a.k_stride, sg.k0 + j0, klim, kcol, D);
  copy_tile<kWgRows * WG, kTh>(Vs, v, a.v_stride, sg.k0 + j0, klim, kcol, D);
  if (ntiles > 0) fetch(0, 0);
  mma::cp_async_commit();

  float dk_acc[64], dv_acc[64];
  VR_UNROLL for (int i = 0; i < 64; i++) dk_acc[i] = dv_acc[i] = 0.f;
  const float scale_log2 = a.scale * 1.4426950408889634f;

  for (int n = 0; n < ntiles; n++) {
    const int buf = n & 1;
    if (n + 1 < ntiles) {  // the other buffer was released by the barrier ending tile n - 1
      fetch(n + 1, buf ^ 1);
      mma::cp_async_commit();
      mma::cp_async_wait<1>();
    } else {
      mma::cp_async_wait<0>();
    }
    wgmma::fence_proxy_async();  // this thread's landed copies, before the async-proxy reads after the barrier
    __syncthreads();
    const __nv_bfloat16* Qb = Qs + buf * kWgTile;
    const __nv_bfloat16* dOb = dOs + buf * kWgTile;
    const float* ls = lse_s + buf * kWgRows;
    const float* dl = delta_s + buf * kWgRows;
    const int64_t i0 = first + (n % per_head) * kWgRows;
    // A warpgroup whose keys are past the segment or seen by no row of the tile (causal; the block's walk starts
    // at its first warpgroup's first tile) skips the tile; the ops are collective per warpgroup only.
    const bool skip = jw >= sg.Lk || (a.causal && jw > i0 + kWgRows - 1 + sg.shift);
    const __nv_bfloat16* Kw = Ks + wg * kWgTile;
    const __nv_bfloat16* Vw = Vs + wg * kWgTile;
    if (!skip) {
    float st[32], dpt[32];  // S^T, dP^T: rows = keys 16 w + g (+ 8), columns = this tile's queries
    VR_UNROLL for (int i = 0; i < 32; i++) st[i] = dpt[i] = 0.f;
    wgmma::fence_operands(st);
    wgmma::fence_operands(dpt);
    wgmma::fence();
    issue_scores(st, Kw, Qb);
    wgmma::commit_group();
    issue_scores(dpt, Vw, dOb);
    wgmma::commit_group();
    wgmma::wait_group<1>();  // S^T in; dP^T may still run
    wgmma::fence_operands(st);

    // Key 16 w + g (+ 8) of the warpgroup sees query qi of the tile when < klen and (causal) <= qi + diag; 32-bit
    // (clamped) to save registers.
    const bool masked = jw + kWgRows > sg.Lk || (a.causal && jw + kWgRows - 1 > i0 + sg.shift);
    const int klen = int(sg.Lk - jw < kWgRows ? sg.Lk - jw : kWgRows);
    const int64_t diag64 = i0 + sg.shift - jw;
    const int diag = int(diag64 < -kWgRows ? -kWgRows : diag64 > kWgRows ? kWgRows : diag64);
    VR_UNROLL for (int r = 0; r < 32; r++) {
      const int qi = 8 * (r / 4) + 2 * t + (r & 1);
      const int key = 16 * w + g + 8 * ((r % 4) >> 1);
      const bool vis = !masked || (key < klen && (!a.causal || key <= qi + diag));
      st[r] = vis && ls[qi] != -INFINITY ? exp2f(st[r] * scale_log2 - ls[qi]) : 0.f;  // P^T
    }
    wgmma::wait_group<0>();  // dP^T in
    wgmma::fence_operands(dpt);
    VR_UNROLL for (int r = 0; r < 32; r++) {
      const int qi = 8 * (r / 4) + 2 * t + (r & 1);
      dpt[r] = st[r] * (dpt[r] - dl[qi]);  // dS^T
    }
    // Both A fragments before either op: S^T / dP^T die here, which keeps the kernel under 255 registers (issuing
    // dV while dP^T is in flight held them all at once and spilled).
    uint32_t pa[4][4], dsa[4][4];
    to_a_fragments(pa, st);
    to_a_fragments(dsa, dpt);
    fence_regs(pa);
    fence_regs(dsa);
    wgmma::fence_operands(dv_acc);
    wgmma::fence_operands(dk_acc);
    wgmma::fence();
    issue_xy(dv_acc, pa, dOb);   // dV += P^T dO
    issue_xy(dk_acc, dsa, Qb);   // dK += dS^T Q
    wgmma::commit_group();
    wgmma::wait_group<0>();
    wgmma::fence_operands(dv_acc);
    wgmma::fence_operands(dk_acc);
    fence_regs(pa);
    fence_regs(dsa);
    }
    __syncthreads();  // every thread's ops on this buffer are done: tile n + 2 may land in it
  }
  mma::cp_async_wait<0>();  // no query tile at all: K / V must still land before the block exits
  const int64_t key0 = sg.k0 + jw;
  if (dk) add_rows64(dk + kcol, a.k_stride, key0, klim, D, a.scale, dk_acc);
  if (dv) add_rows64(dv + kcol, a.v_stride, key0, klim, D, 1.0f, dv_acc);
#else
  (void)dk, (void)dv, (void)dout, (void)lse, (void)delta, (void)q, (void)k, (void)v, (void)a;
#endif
}

// ---- dQ ---------------------------------------------------------------------------------------------------------
template <int WG>
__global__ void __launch_bounds__(128 * WG)
    attention_wgmma_dq_kernel(__nv_bfloat16* dq, const __nv_bfloat16* dout, const float* lse, const float* delta,
                              const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, AttnArgs a) {
#if defined(VR_WGMMA_AVAILABLE)
  const attn::Segment sg = attn::segment(a, blockIdx.z);
  constexpr int kTh = 128 * WG;
  const int h = blockIdx.y, kvh = h / (a.Hq / a.Hkv), D = a.D;
  // Causal: the last query rows walk the most key tiles, so they take the first block indices (launched first,
  // fewer stragglers); dK/dV's first blocks are its longest already.
  const unsigned bx = a.causal ? gridDim.x - 1 - blockIdx.x : blockIdx.x;
  const int64_t i0 = int64_t(bx) * kWgRows * WG;  // the block's first query row; this warpgroup's: iw
  if (i0 >= sg.Lq) return;
  const int wg = int(threadIdx.x) / wgmma::kWarpgroup;
  const int w = wg_lane() / 32, g = (wg_lane() % 32) / 4, t = wg_lane() % 4;
  const int64_t iw = i0 + int64_t(wg) * kWgRows;

  CUDA_DYNAMIC_SHARED(__nv_bfloat16, smem);
  __nv_bfloat16* Qs = smem;                // [64 WG q][128], core-matrix layout
  __nv_bfloat16* dOs = Qs + WG * kWgTile;  // [64 WG q][128]
  __nv_bfloat16* Ks = dOs + WG * kWgTile;  // 2 x [64 keys][128]
  __nv_bfloat16* Vs = Ks + 2 * kWgTile;   // 2 x [64 keys][128]
  const int64_t qcol = int64_t(h) * D, kcol = int64_t(kvh) * D, klim = sg.k0 + sg.Lk;

  const int64_t last_row = (i0 + kWgRows * WG < sg.Lq ? i0 + kWgRows * WG : sg.Lq) - 1;
  const int64_t kend = a.causal ? (last_row + sg.shift + 1 < sg.Lk ? last_row + sg.shift + 1 : sg.Lk) : sg.Lk;
  const int ntiles = kend > 0 ? int((kend + kWgRows - 1) / kWgRows) : 0;
  auto fetch = [&](int n, int buf) {
    copy_tile<kWgRows, kTh>(Ks + buf * kWgTile, k, a.k_stride, sg.k0 + n * kWgRows, klim, kcol, D);
    copy_tile<kWgRows, kTh>(Vs + buf * kWgTile, v, a.v_stride, sg.k0 + n * kWgRows, klim, kcol, D);
  };
  copy_tile<kWgRows * WG, kTh>(Qs, q, a.q_stride, sg.q0 + i0, sg.q0 + sg.Lq, qcol, D);
  copy_tile<kWgRows * WG, kTh>(dOs, dout, a.o_stride, sg.q0 + i0, sg.q0 + sg.Lq, qcol, D);
  if (ntiles > 0) fetch(0, 0);
  mma::cp_async_commit();

  float lse2[2], dl[2];  // this thread's rows 16 w + g, + 8
  VR_UNROLL for (int r = 0; r < 2; r++) {
    const int64_t i = iw + 16 * w + g + 8 * r;
    const int64_t idx = int64_t(h) * a.total_q + sg.q0 + i;
    lse2[r] = i < sg.Lq ? lse[idx] * 1.4426950408889634f : -INFINITY;
    dl[r] = i < sg.Lq ? delta[idx] : 0.f;
  }
  float dq_acc[64];
  VR_UNROLL for (int i = 0; i < 64; i++) dq_acc[i] = 0.f;
  const float scale_log2 = a.scale * 1.4426950408889634f;
  const int64_t row0 = iw + 16 * w + g;
  const __nv_bfloat16* Qw = Qs + wg * kWgTile;
  const __nv_bfloat16* dOw = dOs + wg * kWgTile;

  for (int n = 0; n < ntiles; n++) {
    const int buf = n & 1;
    if (n + 1 < ntiles) {
      fetch(n + 1, buf ^ 1);
      mma::cp_async_commit();
      mma::cp_async_wait<1>();
    } else {
      mma::cp_async_wait<0>();
    }
    wgmma::fence_proxy_async();
    __syncthreads();
    const __nv_bfloat16* Kb = Ks + buf * kWgTile;
    const __nv_bfloat16* Vb = Vs + buf * kWgTile;
    const int64_t j0 = n * kWgRows;
    // A warpgroup whose rows are past the segment or see no key of the tile (causal; the block's walk ends at its
    // last warpgroup's last tile) skips it; the ops are collective per warpgroup only.
    const bool skip = iw >= sg.Lq || (a.causal && j0 > iw + kWgRows - 1 + sg.shift);
    if (!skip) {
    float s[32], dp[32];  // rows = query rows 16 w + g (+ 8), columns = this tile's keys
    VR_UNROLL for (int i = 0; i < 32; i++) s[i] = dp[i] = 0.f;
    wgmma::fence_operands(s);
    wgmma::fence_operands(dp);
    wgmma::fence();
    issue_scores(s, Qw, Kb);
    wgmma::commit_group();
    issue_scores(dp, dOw, Vb);
    wgmma::commit_group();
    wgmma::wait_group<1>();
    wgmma::fence_operands(s);

    const bool masked = j0 + kWgRows > sg.Lk || (a.causal && j0 + kWgRows - 1 > iw + sg.shift);
    VR_UNROLL for (int r = 0; r < 32; r++) {
      const int half = (r % 4) >> 1;
      const int64_t row = row0 + 8 * half, key = j0 + 8 * (r / 4) + 2 * t + (r & 1);
      const bool vis = !masked || (key < sg.Lk && (!a.causal || key <= row + sg.shift));
      s[r] = vis && lse2[half] != -INFINITY ? exp2f(s[r] * scale_log2 - lse2[half]) : 0.f;  // P
    }
    wgmma::wait_group<0>();
    wgmma::fence_operands(dp);
    VR_UNROLL for (int r = 0; r < 32; r++) dp[r] = s[r] * (dp[r] - dl[(r % 4) >> 1]);  // dS
    uint32_t dsa[4][4];
    to_a_fragments(dsa, dp);
    fence_regs(dsa);
    wgmma::fence_operands(dq_acc);
    wgmma::fence();
    issue_xy(dq_acc, dsa, Kb);  // dQ += dS K
    wgmma::commit_group();
    wgmma::wait_group<0>();
    wgmma::fence_operands(dq_acc);
    fence_regs(dsa);
    }
    __syncthreads();  // every thread's ops on this buffer are done: tile n + 2 may land in it
  }
  mma::cp_async_wait<0>();  // no key tile at all: Q / dO must still land before the block exits
  if (dq) add_rows64(dq + qcol, a.q_stride, sg.q0 + iw, sg.q0 + sg.Lq, D, a.scale, dq_acc);
#else
  (void)dq, (void)dout, (void)lse, (void)delta, (void)q, (void)k, (void)v, (void)a;
#endif
}

bool aligned16(const void* p, int64_t stride) { return reinterpret_cast<uintptr_t>(p) % 16 == 0 && stride % 8 == 0; }

template <int WG>
void launch_wgmma_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const float* lse, const float* delta,
                           const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a, Stream s) {
  constexpr int kBlock = kWgRows * WG;
  if ((dk || dv) && a.max_seqlen_k > 0) {
    auto* kernel = attention_wgmma_dkdv_kernel<WG>;
    attn::allow_smem(kernel, kWgDkdvSmem<WG>, "attention_backward_wgmma dk/dv");
    const dim3 grid(unsigned((a.max_seqlen_k + kBlock - 1) / kBlock), unsigned(a.Hkv), unsigned(a.nseq));
    check_launch(cuda_launch(kernel, grid, dim3(128 * WG), kWgDkdvSmem<WG>, s, dptr(dk), dptr(dv), dptr(dout), lse,
                             delta, dptr(q), dptr(k), dptr(v), a),
                 "attention_backward_wgmma dk/dv");
  }
  if (dq && a.max_seqlen_q > 0) {
    auto* kernel = attention_wgmma_dq_kernel<WG>;
    attn::allow_smem(kernel, kWgDqSmem<WG>, "attention_backward_wgmma dq");
    const dim3 grid(unsigned((a.max_seqlen_q + kBlock - 1) / kBlock), unsigned(a.Hq), unsigned(a.nseq));
    check_launch(cuda_launch(kernel, grid, dim3(128 * WG), kWgDqSmem<WG>, s, dptr(dq), dptr(dout), lse, delta,
                             dptr(q), dptr(k), dptr(v), a),
                 "attention_backward_wgmma dq");
  }
}

// Warpgroups per block from VREFLECT_ATTENTION_TILE_WGMMA_BWD (an EnvSwitch, read once like the other tile switches):
// 128x64wg2 (default: two warpgroups, 128 keys / query rows per block sharing each inner tile - half the inner-tile
// traffic per flop) or 64x64wg1 (one warpgroup; two ~97 KiB blocks per SM instead of one ~129 KiB block); 0 for
// "tc": the wgmma path's backward runs on the mma.sync kernels instead (attention_backward.cu), e.g. if this kernel
// fails on a GPU where the forward works. Both shapes fit sm_90's 227 KiB, the only arch they run on.
EnvSwitch g_tile_switch{"VREFLECT_ATTENTION_TILE_WGMMA_BWD", {"auto", "128x64wg2", "64x64wg1", "tc"}};

int wgmma_bwd_warpgroups() {
  constexpr int kWarpgroups[] = {2, 2, 1, 0};
  return kWarpgroups[g_tile_switch.index()];
}

}  // namespace

bool attention_wgmma_backward_takes(const AttnArgs& a, const bf16* q, const bf16* k, const bf16* v,
                                    const bf16* dout) {
  return a.D > 0 && a.D % 8 == 0 && a.D <= kWgDP && aligned16(q, a.q_stride) && aligned16(k, a.k_stride) &&
         aligned16(v, a.v_stride) && aligned16(dout, a.o_stride);
}

std::vector<std::string> attention_wgmma_backward_tiles() { return {"128x64wg2", "64x64wg1"}; }

std::string attention_wgmma_backward_tile() {
  const int wg = wgmma_bwd_warpgroups();
  return wg == 2 ? "128x64wg2" : wg == 1 ? "64x64wg1" : "tc";
}

void attention_backward_wgmma(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const float* lse, const float* delta,
                              const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a, Stream s) {
  attn::check_args(a, "attention_backward_wgmma");
  VR_CHECK(a.D % 8 == 0 && a.D <= kWgDP, "cuda attention_backward_wgmma: head dim ", a.D,
           " is not a multiple of 8 up to ", kWgDP);
  VR_CHECK(q && k && v && dout && lse && delta, "cuda attention_backward_wgmma: null q / k / v / dout / lse / delta");
  VR_CHECK(aligned16(q, a.q_stride) && aligned16(k, a.k_stride) && aligned16(v, a.v_stride) &&
               aligned16(dout, a.o_stride),
           "cuda attention_backward_wgmma: q / k / v / dout must be 16-byte aligned with row strides that are "
           "multiples of 8 (q ", a.q_stride, ", k ", a.k_stride, ", v ", a.v_stride, ", out ", a.o_stride, ")");
  const int wg = wgmma_bwd_warpgroups();
  VR_CHECK(wg > 0, "cuda attention_backward_wgmma: VREFLECT_ATTENTION_TILE_WGMMA_BWD=tc sends this backward to the "
           "mma.sync kernels");
  if (wg == 2) return launch_wgmma_backward<2>(dq, dk, dv, dout, lse, delta, q, k, v, a, s);
  launch_wgmma_backward<1>(dq, dk, dv, dout, lse, delta, q, k, v, a, s);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
