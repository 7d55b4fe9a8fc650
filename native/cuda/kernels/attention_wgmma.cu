// Hopper (sm_90a) flash-attention forward on warpgroup MMA (wgmma.cuh), FlashAttention-3's instruction choice on
// FlashAttention-2's loop; same semantics and AttnArgs as attention_tc.cu (varlen, GQA, bottom-right causal, lse;
// rows that see no key: out 0, lse -inf), bf16 storage, head dims up to 128 padded to DP = 128 columns (zeros,
// never stored). The backward is attention_wgmma_backward.cu.
//
// A block of WG warpgroups (128 WG threads) owns 64 WG query rows of one (segment, head); warpgroup wg owns rows
// 64 wg .., so every score / probability / output row lives in one warpgroup's accumulator fragments (thread
// 32 w + 4 g + t holds rows 16 w + g and 16 w + g + 8). Per key tile of KN keys:
//   S[64 x KN] = Q K^T: DP / 16 wgmma ops m64nKNk16, A = the warpgroup's Q rows from shared memory (SS, K-major),
//     B = the K tile (K-major: K is stored [key][d], d contiguous), one commit group, waited at once;
//   online softmax in the S fragments (a row's max / sum: the thread's values, then the 4 threads of its quad), exp2
//     with the scale folded into log2(e), O's fragments rescaled;
//   O[64 x DP] += P V: KN / 16 ops m64n128k16 with A = P rounded to bf16 IN REGISTERS (the S accumulator of key
//     columns 16 kk .. 16 kk + 15 is exactly the RS A fragment of k-step kk) and B = the V tile as MN-major B (V is
//     stored [key][d]: d = N contiguous; the transpose bit), one commit group, waited before the next tile
//     (plain order) or issued after the next tile's S and waited after its softmax (overlap order, the "o"
//     variants: the softmax runs while the tensor cores do the previous tile's P V; see the kernel's comment);
//   ping-pong (the "p" variants, on the overlap order, two warpgroups): the warpgroups issue their GEMMs in turns,
//     ordered by two named barriers (bar.sync on its own turn, bar.arrive on the other's), so one warpgroup's softmax
//     runs under the other's GEMMs (FlashAttention-3's inter-warpgroup schedule); the per-tile __syncthreads is a
//     named barrier the two warpgroups reach at different points of their tile (see the kernel's comment).
// Shared memory holds Q, and K, V double-buffered, all as no-swizzle core-matrix tiles (wgmma::core_offset: rows of
// a tile in groups of 8, each 16-byte chunk of 8 columns contiguous, so cp.async fills chunks directly; chunk c is
// wgmma::tile_chunk(c), at shared offset 16 c: no bank conflicts); tile j+1 (the overlap order: K_{j+1} and V_j)
// is copied while tile j is computed; after the copies land each thread fences them into the async proxy
// (fence.proxy.async) before the barrier that publishes them. Rows whose base / stride is not 16-byte aligned take
// element stores (fenced the same way).
// Variants (VREFLECT_ATTENTION_TILE_WGMMA, first = default): "<rows>x<keys>wg<warpgroups>", + "o" for the overlap
// order, + "p" for ping-pong (with the overlap order).
#include <atomic>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "cuda/kernels/attention_common.cuh"
#include "cuda/kernels/env_switch.h"
#include "cuda/kernels/wgmma.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kWgDP = 128;                       // padded head dim
constexpr size_t kWgMaxSmem = 227 * 1024;          // sm_90's opt-in limit

template <int WG, int KN>
struct WgShape {
  static_assert(WG == 1 || WG == 2, "one or two warpgroups");
  static_assert(KN == 64 || KN == 128, "key tiles of 64 or 128 (the wgmma N of S)");
  static constexpr int kRows = 64 * WG, kThreads = 128 * WG;
  static constexpr size_t kQ = size_t(kRows) * kWgDP, kKV = size_t(KN) * kWgDP;  // elements
  static constexpr size_t kSmemBytes = sizeof(__nv_bfloat16) * (kQ + 4 * kKV);
  static_assert(kSmemBytes <= kWgMaxSmem, "tile shape over sm_90's shared memory");
};

struct WgVec {
  bool q, k, v;
};

#if defined(VR_WGMMA_AVAILABLE)
constexpr uint32_t kWgRowGroup = kWgDP / 8 * 128;  // bytes per 8 rows of a [rows][128] core-matrix tile

// Rows r0 .. r0 + ROWS of src (head columns col0 .., zero past D or at rows >= limit) into a core-matrix tile, by
// cp.async 16-byte chunks where allowed, element stores otherwise. The caller commits, waits, fences and syncs.
template <int ROWS, int THREADS>
__device__ __forceinline__ void load_tile(__nv_bfloat16* S, const __nv_bfloat16* src, int64_t stride, int64_t r0,
                                          int64_t limit, int64_t col0, int D, bool vec) {
  constexpr int kChunks = ROWS * kWgDP / 8;
  const __nv_bfloat16 zero = __float2bfloat16(0.f);
  for (int c = threadIdx.x; c < kChunks; c += THREADS) {
    const wgmma::TileChunk ch = wgmma::tile_chunk(c, kWgDP);  // shared offset 16 c: no bank conflict
    const int r = ch.row, cc = ch.col;
    const int64_t row = r0 + r;
    __nv_bfloat16* dst = S + 8 * c;
    if (vec) {
      const bool ok = row < limit && cc + 8 <= D;  // vec: D % 8 == 0, a chunk is all inside or all padding
      mma::cp_async16(dst, ok ? src + row * stride + col0 + cc : src, ok);
    } else {
      VR_UNROLL for (int j = 0; j < 8; j++) dst[j] = row < limit && cc + j < D ? src[row * stride + col0 + cc + j] : zero;
    }
  }
}
#endif

#if defined(VR_WGMMA_AVAILABLE)
// S[64 x KN] = Q K^T for the warpgroup's 64 rows: DP / 16 SS ops m64nKNk16, one commit group (the caller waits).
template <int KN>
__device__ __forceinline__ void issue_qk(float (&s)[KN / 2], const __nv_bfloat16* Qw, const __nv_bfloat16* Kb) {
  wgmma::fence_operands(s);
  wgmma::fence();
  VR_UNROLL for (int ks = 0; ks < kWgDP / 16; ks++) {
    const uint64_t da = wgmma::desc_k_major(Qw + wgmma::core_offset(0, 16 * ks, kWgRowGroup) / 2, kWgRowGroup);
    const uint64_t db = wgmma::desc_k_major(Kb + wgmma::core_offset(0, 16 * ks, kWgRowGroup) / 2, kWgRowGroup);
    wgmma::mma_ss<KN, false>(s, da, db, ks > 0);
  }
  wgmma::commit_group();
}

// O[64 x DP] += P V: KN / 16 RS ops m64n128k16 (A = P's bf16 fragments, B = the V tile MN-major), one commit group.
template <int KN>
__device__ __forceinline__ void issue_pv(float (&o)[kWgDP / 2], const uint32_t (&pa)[KN / 16][4],
                                         const __nv_bfloat16* Vb) {
  wgmma::fence_operands(o);
  wgmma::fence();
  VR_UNROLL for (int kk = 0; kk < KN / 16; kk++) {
    const uint64_t dv = wgmma::desc_mn_major(Vb + wgmma::core_offset(16 * kk, 0, kWgRowGroup) / 2, kWgRowGroup);
    wgmma::mma_rs<kWgDP, true>(o, pa[kk], dv, true);
  }
  wgmma::commit_group();
}

template <int KN>
__device__ __forceinline__ void fence_p(uint32_t (&pa)[KN / 16][4]) {
  VR_UNROLL for (int kk = 0; kk < KN / 16; kk++) VR_UNROLL for (int e = 0; e < 4; e++) wgmma::fence_operand(pa[kk][e]);
}

// P's A fragment of k-step kk = S registers 8 kk .. 8 kk + 7 as bf16 pairs.
template <int KN>
__device__ __forceinline__ void pack_p(uint32_t (&pa)[KN / 16][4], const float (&s)[KN / 2]) {
  VR_UNROLL for (int kk = 0; kk < KN / 16; kk++) VR_UNROLL for (int e = 0; e < 4; e++)
      pa[kk][e] = mma::pack_bf16x2(s[8 * kk + 2 * e], s[8 * kk + 2 * e + 1]);
}

// Where a thread's S fragment sits: its warp's first row (segment-relative), the quad coordinates, the tile's first
// key, and the masking facts of the segment.
struct TileRows {
  int64_t row0, j0, Lk, shift;
  int g, t;
  bool causal;
};

// Online softmax of one key tile in place in the S fragments (register r: row 16 w + g + 8 ((r % 4) >> 1), key
// 8 (r / 4) + 2 t + (r & 1)): masked keys -inf, the row max over the thread and its quad, p = exp2(s scale log2 e -
// m) in s, the running max m and sum l updated; alpha = the factor the row's O must be scaled by (the caller does
// it, once the O accumulators are not in flight).
template <int KN>
__device__ __forceinline__ void softmax_tile(float (&s)[KN / 2], float (&m)[2], float (&l)[2], float (&alpha)[2],
                                             const TileRows& tr, float scale_log2) {
  using namespace dev;
  const bool masked = tr.j0 + KN > tr.Lk || (tr.causal && tr.j0 + KN - 1 > tr.row0 + tr.shift);
  float mx[2] = {-INFINITY, -INFINITY};
  VR_UNROLL for (int r = 0; r < KN / 2; r++) {
    const int hi = (r % 4) >> 1;
    float x = s[r] * scale_log2;
    if (masked) {
      const int64_t row = tr.row0 + tr.g + 8 * hi, key = tr.j0 + 8 * (r / 4) + 2 * tr.t + (r & 1);
      if (key >= tr.Lk || (tr.causal && key > row + tr.shift)) x = -INFINITY;
    }
    s[r] = x;
    mx[hi] = fmaxf(mx[hi], x);
  }
  float base[2];
  VR_UNROLL for (int hi = 0; hi < 2; hi++) {
    mx[hi] = fmaxf(mx[hi], __shfl_xor_sync(kFullMask, mx[hi], 1));
    mx[hi] = fmaxf(mx[hi], __shfl_xor_sync(kFullMask, mx[hi], 2));
    const float mn = fmaxf(m[hi], mx[hi]);
    alpha[hi] = m[hi] == -INFINITY ? 0.f : exp2f(m[hi] - mn);
    base[hi] = mn == -INFINITY ? 0.f : mn;  // no visible key yet: every p is exp2(-inf) = 0
    m[hi] = mn;
  }
  float rs[2] = {0.f, 0.f};
  VR_UNROLL for (int r = 0; r < KN / 2; r++) {
    const int hi = (r % 4) >> 1;
    const float p = exp2f(s[r] - base[hi]);
    s[r] = p;
    rs[hi] += p;
  }
  VR_UNROLL for (int hi = 0; hi < 2; hi++) l[hi] = l[hi] * alpha[hi] + rs[hi];
}

__device__ __forceinline__ void rescale_o(float (&o)[kWgDP / 2], const float (&alpha)[2]) {
  VR_UNROLL for (int r = 0; r < kWgDP / 2; r++) o[r] *= alpha[(r % 4) >> 1];
}
#endif

// OVERLAP = false: per key tile S = Q K^T (wait), softmax, O += P V (wait) - the tensor cores idle in the softmax.
// OVERLAP = true (FlashAttention-3's intra-warpgroup pipelining, "o" variants): tile j issues the next copies and
// S_j = Q K_j^T, then (under it) O's rescale by tile j - 1's max, then O += P_{j-1} V_{j-1} (P_{j-1} packed to bf16
// registers in tile j - 1), waits for S_j only (wait_group 1), runs tile j's softmax while P_{j-1} V_{j-1} is still
// on the tensor cores, then waits for it (wait_group 0) and packs P_j; the last rescale and P V run after the loop.
// One S accumulator suffices (the in-flight P is already bf16), so the extra registers over OVERLAP = false are P's
// KN / 4 fragment registers (and O's factor across tiles). Shared memory: K runs one tile ahead of V - tile j's
// copies are K_{j+1} (into the buffer of K_{j-1}, whose S every thread waited for in tile j - 1) and V_j (into the
// buffer of V_{j-2}, whose P V every thread waited for in tile j - 1), both landed, fenced and published by the
// barrier that ends tile j; the prologue loads Q and K_0 only. (Issuing the copies after S_j too would hide them
// under the tensor cores, but their address arithmetic then lives beside S, O and P: 253 registers for 128x128wg2o
// against 226, at the edge of spilling - not done.)
//
// PINGPONG (needs OVERLAP and WG = 2; the "p" variants: FlashAttention-3's inter-warpgroup ping-pong): the two
// warpgroups take turns on the tensor cores, so one's softmax runs while the other's GEMMs do. Turns are two named
// barriers, kBarTurn + w = "warpgroup w may issue" (count 256: its 128 syncs + the other warpgroup's 128 arrivals):
// a warpgroup syncs on its own before issuing S_j and P_{j-1} V_{j-1}, and arrives on the other's right after (the
// ops are in the tensor cores' queue in turn order: warpgroup 0's tile j, 1's tile j, 0's tile j + 1, ...);
// warpgroup 1 arrives once before the loop (warpgroup 0 goes first), and the last P V is a turn of its own (each
// barrier then gets as many arrivals as syncs: warpgroup 0 syncs turn 0 ntiles + 1 times, warpgroup 1 arrives there
// 1 + ntiles times; turn 1 the same the other way). The per-tile __syncthreads becomes a named barrier (kBarTile,
// 256) that the warpgroups reach at DIFFERENT points: warpgroup 0 at the end of tile j (as above), warpgroup 1
// right after its ops of tile j are waited for (wait_group 0: S_j and P_{j-1} V_{j-1} both in), before its
// softmax of tile j - where, in the steady ping-pong, warpgroup 0 is at the end of its tile j (its softmax ran
// under warpgroup 1's GEMMs), so the barrier costs neither of them a wait and warpgroup 1's softmax runs under
// warpgroup 0's tile j + 1 ops. What the tile barrier proves is unchanged: every thread reaches barrier j after its
// wait_group covering S_j (reads K_j) and P_{j-1} V_{j-1} (reads V_{j-1}) and after its copies of tile j (K_{j+1},
// V_j) landed and were fenced; the copies of tile j + 1 (into the buffers of K_j and V_{j-1}) and the ops reading
// K_{j+1} and V_j are all after barrier j in every thread's program order. Warpgroup 1 gives up the intra-warpgroup
// overlap for that (its softmax after wait_group 0); warpgroup 0 keeps it.
template <int WG, int KN, bool OVERLAP, bool PINGPONG = false>
__global__ void __launch_bounds__(128 * WG)
    attention_wgmma_forward_kernel(__nv_bfloat16* out, float* lse, const __nv_bfloat16* q, const __nv_bfloat16* k,
                                   const __nv_bfloat16* v, AttnArgs a, WgVec vec) {
#if defined(VR_WGMMA_AVAILABLE)
  using namespace dev;
  using namespace mma;
  using F = WgShape<WG, KN>;
  static_assert(!PINGPONG || (OVERLAP && WG == 2), "ping-pong: two warpgroups, on the overlap order");
  constexpr int kRows = F::kRows, kT = F::kThreads;
  constexpr int kBarTile = 1, kBarTurn = 2;  // named barriers of the ping-pong: per tile; warpgroup w's turn: 2 + w
  const attn::Segment sg = attn::segment(a, blockIdx.z);
  const int h = blockIdx.y, kvh = h / (a.Hq / a.Hkv), D = a.D;
  const int64_t i0 = int64_t(blockIdx.x) * kRows;
  if (i0 >= sg.Lq) return;  // uniform over the block, before any barrier
  const int wg = threadIdx.x / 128, w = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;

  CUDA_DYNAMIC_SHARED(__nv_bfloat16, smem);
  __nv_bfloat16* Qs = smem;          // [kRows][DP]
  __nv_bfloat16* Ks = Qs + F::kQ;    // 2 x [KN][DP]
  __nv_bfloat16* Vs = Ks + 2 * F::kKV;  // 2 x [KN][DP]

  const int64_t last_row = (i0 + kRows < sg.Lq ? i0 + kRows : sg.Lq) - 1;
  const int64_t kend = a.causal ? (last_row + sg.shift + 1 < sg.Lk ? last_row + sg.shift + 1 : sg.Lk) : sg.Lk;
  const int ntiles = kend > 0 ? int((kend + KN - 1) / KN) : 0;
  const int64_t kcol = int64_t(kvh) * D, klim = sg.k0 + sg.Lk;
  auto load_k = [&](int jt, int buf) {
    load_tile<KN, kT>(Ks + buf * F::kKV, k, a.k_stride, sg.k0 + int64_t(jt) * KN, klim, kcol, D, vec.k);
  };
  auto load_v = [&](int jt, int buf) {
    load_tile<KN, kT>(Vs + buf * F::kKV, v, a.v_stride, sg.k0 + int64_t(jt) * KN, klim, kcol, D, vec.v);
  };
  load_tile<kRows, kT>(Qs, q, a.q_stride, sg.q0 + i0, sg.q0 + sg.Lq, int64_t(h) * D, D, vec.q);
  if (ntiles > 0) load_k(0, 0);
  if (!OVERLAP && ntiles > 0) load_v(0, 0);
  cp_async_commit();
  cp_async_wait<0>();
  wgmma::fence_proxy_async();  // this thread's copies / stores, into the async proxy before the barrier
  __syncthreads();

  const __nv_bfloat16* Qw = Qs + size_t(64 * wg) * kWgDP;  // the warpgroup's 64 rows (8 whole row groups)
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  float o[kWgDP / 2];
  VR_UNROLL for (int r = 0; r < kWgDP / 2; r++) o[r] = 0.f;
  const float scale_log2 = a.scale * 1.4426950408889634f;
  const int64_t row0 = i0 + 64 * wg + 16 * w;  // this warp's first row (segment-relative)
  TileRows tr{row0, 0, sg.Lk, sg.shift, g, t, a.causal};
  uint32_t pa[KN / 16][4];  // P of the last softmaxed tile as RS A fragments
  float alpha[2];           // the factor of O's rows from the last softmax
  if (PINGPONG && wg == 1 && ntiles > 0) wgmma::bar_arrive(kBarTurn + 0, kT);  // warpgroup 0 takes the first turn

  for (int jt = 0; jt < ntiles; jt++) {
    const int buf = jt & 1;
    tr.j0 = int64_t(jt) * KN;
    float s[KN / 2];
    if constexpr (!OVERLAP) {
      if (jt + 1 < ntiles) load_k(jt + 1, buf ^ 1), load_v(jt + 1, buf ^ 1);  // freed by the last barrier
      cp_async_commit();
      issue_qk<KN>(s, Qw, Ks + buf * F::kKV);
      wgmma::wait_group<0>();
      wgmma::fence_operands(s);
      softmax_tile<KN>(s, m, l, alpha, tr, scale_log2);
      rescale_o(o, alpha);
      pack_p<KN>(pa, s);
      issue_pv<KN>(o, pa, Vs + buf * F::kKV);
      wgmma::wait_group<0>();
      wgmma::fence_operands(o);
      fence_p<KN>(pa);
    } else {
      if (jt + 1 < ntiles) load_k(jt + 1, buf ^ 1);  // K_{jt-1}'s buffer
      load_v(jt, buf);                                // V_{jt-2}'s buffer
      cp_async_commit();
      if (PINGPONG) wgmma::bar_sync(kBarTurn + wg, kT);  // this warpgroup's turn on the tensor cores
      issue_qk<KN>(s, Qw, Ks + buf * F::kKV);        // S_jt first: O's rescale below runs under it
      if (jt > 0) {
        rescale_o(o, alpha);                           // by tile jt - 1's max (O is not in flight)
        issue_pv<KN>(o, pa, Vs + (buf ^ 1) * F::kKV);  // O += P_{jt-1} V_{jt-1}, under this tile's softmax
      }
      if (PINGPONG) wgmma::bar_arrive(kBarTurn + (wg ^ 1), kT);  // the other warpgroup's turn
      if (PINGPONG && wg == 1) {
        // Warpgroup 1: its ops in, then the tile barrier (see above), then the softmax under warpgroup 0's ops.
        wgmma::wait_group<0>();
        wgmma::fence_operands(s);
        wgmma::fence_operands(o);
        fence_p<KN>(pa);
        cp_async_wait<0>();
        wgmma::fence_proxy_async();
        wgmma::bar_sync(kBarTile, kT);
        softmax_tile<KN>(s, m, l, alpha, tr, scale_log2);
        pack_p<KN>(pa, s);
        continue;
      }
      if (jt > 0) {
        wgmma::wait_group<1>();  // S_jt in; P V may still run
      } else {
        wgmma::wait_group<0>();
      }
      wgmma::fence_operands(s);
      softmax_tile<KN>(s, m, l, alpha, tr, scale_log2);  // alpha: O's factor, applied before the next P V
      wgmma::wait_group<0>();  // P_{jt-1} V_{jt-1} in: O and P's registers are free
      wgmma::fence_operands(o);
      fence_p<KN>(pa);
      pack_p<KN>(pa, s);
    }
    cp_async_wait<0>();          // the next tile's copies are in (this thread's) ...
    wgmma::fence_proxy_async();  // ... visible to the async proxy ...
    if (PINGPONG)
      wgmma::bar_sync(kBarTile, kT);  // (warpgroup 0's point of the tile barrier)
    else
      __syncthreads();  // ... for everyone, and everyone is done with the buffers they refill next
  }
  if (OVERLAP && ntiles > 0) {  // the last tile's P V
    rescale_o(o, alpha);
    if (PINGPONG) wgmma::bar_sync(kBarTurn + wg, kT);
    issue_pv<KN>(o, pa, Vs + ((ntiles - 1) & 1) * F::kKV);
    if (PINGPONG && wg == 0) wgmma::bar_arrive(kBarTurn + 1, kT);  // warpgroup 1's last turn
    wgmma::wait_group<0>();
    wgmma::fence_operands(o);
    fence_p<KN>(pa);
  }

  VR_UNROLL for (int hi = 0; hi < 2; hi++) {
    l[hi] += __shfl_xor_sync(kFullMask, l[hi], 1);
    l[hi] += __shfl_xor_sync(kFullMask, l[hi], 2);
  }
  VR_UNROLL for (int hi = 0; hi < 2; hi++) {
    const int64_t i = row0 + g + 8 * hi;
    if (i >= sg.Lq) continue;
    const float inv = l[hi] > 0.f ? 1.0f / l[hi] : 0.f;
    __nv_bfloat16* orow = out + (sg.q0 + i) * a.o_stride + int64_t(h) * D;
    VR_UNROLL for (int nb = 0; nb < kWgDP / 8; nb++) VR_UNROLL for (int e = 0; e < 2; e++) {
        const int c = 8 * nb + 2 * t + e;
        if (c < D) orow[c] = from_f32<__nv_bfloat16>(o[4 * nb + 2 * hi + e] * inv);
      }
    if (lse && t == 0)
      lse[int64_t(h) * a.total_q + sg.q0 + i] = l[hi] > 0.f ? (m[hi] + log2f(l[hi])) * 0.6931471805599453f : -INFINITY;
  }
#else
  // Built for an image without wgmma (sm_80, plain sm_90): the host never launches this (attention_wgmma_ready).
  (void)out, (void)lse, (void)q, (void)k, (void)v, (void)a, (void)vec;
#endif
}

bool vec_ok(const void* p, int64_t stride, int D) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0 && stride % 8 == 0 && D % 8 == 0;
}

template <int WG, int KN, bool OVERLAP, bool PINGPONG = false>
void launch_wgmma(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a, Stream s) {
  using F = WgShape<WG, KN>;
  auto* kernel = attention_wgmma_forward_kernel<WG, KN, OVERLAP, PINGPONG>;
  attn::allow_smem(kernel, F::kSmemBytes, "attention_wgmma_forward");
  const dim3 grid(unsigned((a.max_seqlen_q + F::kRows - 1) / F::kRows), unsigned(a.Hq), unsigned(a.nseq));
  const WgVec vec{vec_ok(q, a.q_stride, a.D), vec_ok(k, a.k_stride, a.D), vec_ok(v, a.v_stride, a.D)};
  check_launch(cuda_launch(kernel, grid, dim3(F::kThreads), F::kSmemBytes, s, dptr(out), lse, dptr(q), dptr(k),
                           dptr(v), a, vec),
               "attention_wgmma_forward");
}

using WgLaunch = void (*)(bf16*, float*, const bf16*, const bf16*, const bf16*, const AttnArgs&, Stream);
struct WgVariant {
  const char* name;
  WgLaunch launch;
};
// The first is the default until a GPU measures a better one.
const WgVariant kWgVariants[] = {
    {"128x64wg2", launch_wgmma<2, 64, false>},    // 2 warpgroups x 64 rows, 64-key tiles (96 KiB: two blocks per SM)
    {"128x128wg2", launch_wgmma<2, 128, false>},  // 128-key tiles (160 KiB): FlashAttention-3's shape at D = 128
    {"64x128wg1", launch_wgmma<1, 128, false>},   // one warpgroup (144 KiB)
    // "o": the softmax of tile j under the tensor cores' P_{j-1} V_{j-1} (same shared memory, P's registers more)
    {"128x64wg2o", launch_wgmma<2, 64, true>},
    {"128x128wg2o", launch_wgmma<2, 128, true>},
    {"64x128wg1o", launch_wgmma<1, 128, true>},
    // "p": the two warpgroups' GEMMs in turns (ping-pong, on the "o" order; same shared memory)
    {"128x64wg2p", launch_wgmma<2, 64, true, true>},
    {"128x128wg2p", launch_wgmma<2, 128, true, true>},
};

std::vector<std::string> wg_switch_values() {
  std::vector<std::string> r{"auto"};
  for (const WgVariant& x : kWgVariants) r.push_back(x.name);
  return r;
}
// VREFLECT_ATTENTION_TILE_WGMMA: 0 "auto" (unset too) = the first variant, i > 0 the variant i - 1. Every variant
// fits sm_90's 227 KiB (WgShape's static_assert), the only arch these kernels run on, so auto needs no device check.
EnvSwitch g_tile_switch{"VREFLECT_ATTENTION_TILE_WGMMA", wg_switch_values()};

int env_tile() {
  const int sw = g_tile_switch.index();
  return sw > 0 ? sw - 1 : 0;
}

#if !defined(VR_CUDA_EMULATED)
// The self-check: the probe GEMM in the two shapes the kernel issues (S: SS, K-major B, N = 64, 8 k-steps worth
// of k; P V: RS, MN-major B, N = 128) against a host product; max error.
double self_check_error() {
  double worst = 0;
  const struct {
    int n, k;
    bool rs, mn;
  } cases[] = {{64, 64, false, false}, {128, 32, true, true}, {128, 16, false, false}, {64, 48, true, true}};
  uint32_t state = 12345u;
  auto next = [&] {  // small exact values: bf16 integers in [-4, 4]
    state = state * 1664525u + 1013904223u;
    return float(int(state >> 28) % 9 - 4);
  };
  for (const auto& c : cases) {
    std::vector<bf16> a(size_t(64 * c.k)), b(size_t(c.k * c.n));
    std::vector<float> af(a.size()), bfl(b.size());
    for (size_t i = 0; i < a.size(); i++) af[i] = next(), a[i].bits = vr::f32_to_bf16(af[i]);
    for (size_t i = 0; i < b.size(); i++) bfl[i] = next(), b[i].bits = vr::f32_to_bf16(bfl[i]);
    bf16 *da = nullptr, *db = nullptr;
    float* dd = nullptr;
    bool ok = cudaMalloc(reinterpret_cast<void**>(&da), a.size() * sizeof(bf16)) == cudaSuccess &&
              cudaMalloc(reinterpret_cast<void**>(&db), b.size() * sizeof(bf16)) == cudaSuccess &&
              cudaMalloc(reinterpret_cast<void**>(&dd), size_t(64 * c.n) * sizeof(float)) == cudaSuccess &&
              cudaMemcpy(da, a.data(), a.size() * sizeof(bf16), cudaMemcpyHostToDevice) == cudaSuccess &&
              cudaMemcpy(db, b.data(), b.size() * sizeof(bf16), cudaMemcpyHostToDevice) == cudaSuccess &&
              cudaMemset(dd, 0xFF, size_t(64 * c.n) * sizeof(float)) == cudaSuccess;  // NaN: unwritten shows
    std::vector<float> d(size_t(64 * c.n), NAN);
    if (ok) {
      try {
        wgmma_probe_gemm(dd, da, db, nullptr, c.n, c.k, c.rs, c.mn, false);
        ok = cudaMemcpy(d.data(), dd, d.size() * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess;
      } catch (const std::exception&) {
        ok = false;
      }
    }
    if (!ok) (void)cudaGetLastError();
    cudaFree(da), cudaFree(db), cudaFree(dd);
    if (!ok) return INFINITY;
    for (int i = 0; i < 64; i++)
      for (int j = 0; j < c.n; j++) {
        double ref = 0;
        for (int kk = 0; kk < c.k; kk++) ref += double(af[size_t(i * c.k + kk)]) * bfl[size_t(kk * c.n + j)];
        const double e = std::fabs(double(d[size_t(i * c.n + j)]) - ref);
        worst = std::isnan(e) ? INFINITY : std::fmax(worst, e);
      }
  }
  return worst;
}

// Per device: 0 not checked, 1 ready, 2 no wgmma image, 3 self-check failed.
constexpr int kMaxDevices = 64;
std::atomic<int> g_ready[kMaxDevices];
std::mutex g_ready_mutex;
#endif

}  // namespace

std::vector<std::string> attention_wgmma_tiles() {
  std::vector<std::string> r;
  for (const WgVariant& x : kWgVariants) r.push_back(x.name);
  return r;
}
std::string attention_wgmma_tile() { return kWgVariants[env_tile()].name; }

WgmmaState attention_wgmma_state(Stream s) {
#if defined(VR_CUDA_EMULATED)
  // The model is always there. (The emulator build must not call runtime functions the emulator does not define:
  // the linker would pull the real CUDA runtime in and its symbols would replace the emulator's.)
  (void)s;
  return WgmmaState::Ready;
#else
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= kMaxDevices) {
    (void)cudaGetLastError();
    return WgmmaState::NoImage;
  }
  int st = g_ready[dev].load(std::memory_order_acquire);
  if (st != 0) return WgmmaState(st);
  // Launches and synchronous copies must not run while this thread's stream is being captured into a graph: not
  // checked yet there, so this call takes the mma.sync path (the next eager call runs the check).
  cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(s, &cap) != cudaSuccess) {
    (void)cudaGetLastError();
    return WgmmaState::Unchecked;
  }
  if (cap != cudaStreamCaptureStatusNone) return WgmmaState::Unchecked;
  std::lock_guard<std::mutex> lock(g_ready_mutex);
  st = g_ready[dev].load(std::memory_order_acquire);
  if (st != 0) return WgmmaState(st);
  if (!wgmma_image_available()) {
    st = int(WgmmaState::NoImage);
  } else {
    const double err = self_check_error();
    st = int(err <= 1e-3 ? WgmmaState::Ready : WgmmaState::CheckFailed);
    if (st == int(WgmmaState::CheckFailed))
      std::fprintf(stderr,
                   "vreflect: the wgmma self-check failed on GPU %d (max error %g vs the host product): attention "
                   "uses the mma.sync kernels (VREFLECT_ATTENTION=tc); please report\n",
                   dev, err);
  }
  g_ready[dev].store(st, std::memory_order_release);
  return WgmmaState(st);
#endif
}


void attention_forward_wgmma(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a,
                             Stream s) {
  VR_CHECK(a.D <= kWgDP, "attention_forward_wgmma: head dim ", a.D, " > ", kWgDP);
  kWgVariants[env_tile()].launch(out, lse, q, k, v, a, s);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
