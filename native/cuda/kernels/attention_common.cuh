// Pieces shared by the flash-attention forward and backward kernels: tile sizes, per-segment geometry,
// argument checks and tile loads into shared memory (converted to fp32).
//
// Tiling: BR = 16 query rows and BC = 32 keys per tile, 128 threads = 4 warps. In the score phase a warp owns
// 4 query rows and lane j owns key j of the tile, so row max/sum are warp shuffles. Accumulators over the
// head dimension are spread over the lanes: lane owns columns lane + 32 t, t < NC (NC = ceil(D / 32), a
// template parameter so they stay in registers). K (and V in the backward) tiles are stored with a row
// stride of D + 1 floats so that lane-per-key dot products hit 32 different shared-memory banks.
// All arithmetic of these scalar kernels is fp32 on CUDA cores; the tensor-core forward is attention_tc.cu.
#pragma once
#include "cuda/kernels/common.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {
namespace attn {

constexpr int kBR = 16, kBC = 32, kWarps = 4, kThreads = kWarps * 32, kRowsPerWarp = kBR / kWarps;
constexpr int kKeysPerWarp = kBC / kWarps;  // backward dK/dV ownership
constexpr int kMaxD = 256;

// One segment as seen from a block: query rows [q0, q0 + Lq), key rows [k0, k0 + Lk); query i sees key j
// when !causal or j <= i + shift (bottom-right alignment, shift = Lk - Lq).
struct Segment {
  int64_t q0, Lq, k0, Lk, shift;
};
__device__ __forceinline__ Segment segment(const AttnArgs& a, int s) {
  Segment g;
  g.q0 = a.cu_q[s];
  g.Lq = a.cu_q[s + 1] - g.q0;
  g.k0 = a.cu_k[s];
  g.Lk = a.cu_k[s + 1] - g.k0;
  g.shift = g.Lk - g.Lq;
  return g;
}
__device__ __forceinline__ bool visible(const AttnArgs& a, const Segment& g, int64_t i, int64_t j) {
  return i < g.Lq && j < g.Lk && (!a.causal || j <= i + g.shift);
}

// rows x D elements starting at segment row r0 (head column offset col0) -> dst[r * dst_stride + c] as fp32;
// rows at or beyond `limit` are zero.
template <class T>
__device__ __forceinline__ void load_tile(float* dst, int dst_stride, const T* src, int64_t src_stride, int64_t r0,
                                          int64_t limit, int64_t col0, int rows, int D) {
  using namespace dev;
  for (int idx = threadIdx.x; idx < rows * D; idx += blockDim.x) {
    const int r = idx / D, c = idx % D;
    const int64_t row = r0 + r;
    dst[r * dst_stride + c] = row < limit ? to_f32(src[row * src_stride + col0 + c]) : 0.f;
  }
}

__device__ __forceinline__ float dot(const float* a, const float* b, int D) {
  float s = 0.f;
  for (int c = 0; c < D; c++) s += a[c] * b[c];
  return s;
}

// One key tile's online-softmax step for a query row whose 32 scores sit one per lane (s = -inf where the key is
// not visible): the running max m and sum l move to the tile, the lane's probability p = exp(s - m_new) is returned
// (0 where not visible) and alpha = exp(m_old - m_new) is what the row's accumulator must be scaled by (0 while no
// key has been seen). Shared by the scalar forward and the split-KV decode.
__device__ __forceinline__ float online_softmax_step(float s, bool vis, float& m, float& l, float& alpha) {
  using namespace dev;
  const float mn = fmaxf(m, warp_max(s));
  const float p = vis ? expf(s - mn) : 0.f;
  alpha = m == -INFINITY ? 0.f : expf(m - mn);
  l = l * alpha + warp_sum(p);
  m = mn;
  return p;
}

// Columns per lane for head dim D: 3 for D <= 96 (the ViT's 80), 4 for D <= 128 (the LLM's), 8 up to 256.
inline int columns_per_lane(int D) { return D <= 96 ? 3 : D <= 128 ? 4 : 8; }

inline void check_args(const AttnArgs& a, const char* op) {
  VR_CHECK(a.Hq > 0 && a.Hkv > 0 && a.D > 0, "cuda ", op, ": bad head shape Hq=", a.Hq, " Hkv=", a.Hkv, " D=", a.D);
  VR_CHECK(a.Hq % a.Hkv == 0, "cuda ", op, ": Hq=", a.Hq, " is not a multiple of Hkv=", a.Hkv);
  VR_CHECK(a.D <= kMaxD, "cuda ", op, ": head dim ", a.D, " > ", kMaxD, " is not supported");
  VR_CHECK(a.nseq >= 0 && a.nseq <= 65535, "cuda ", op, ": segment count ", a.nseq, " outside [0, 65535]");
  VR_CHECK(a.cu_q && a.cu_k, "cuda ", op, ": cu_q / cu_k are null");
  VR_CHECK(a.max_seqlen_q >= 0 && a.max_seqlen_k >= 0, "cuda ", op, ": negative max_seqlen");
  VR_CHECK(a.total_q >= 0, "cuda ", op, ": negative total_q");
  VR_CHECK(a.q_stride >= int64_t(a.Hq) * a.D && a.o_stride >= int64_t(a.Hq) * a.D, "cuda ", op,
           ": q/out row stride smaller than Hq*D=", int64_t(a.Hq) * a.D);
  VR_CHECK(a.k_stride >= int64_t(a.Hkv) * a.D && a.v_stride >= int64_t(a.Hkv) * a.D, "cuda ", op,
           ": k/v row stride smaller than Hkv*D=", int64_t(a.Hkv) * a.D);
}

// Kernels needing more than 48 KiB of dynamic shared memory must opt in first. A refusal (more than the GPU allows)
// is also left as the thread's last error, which the next launch's check would report as its own: cleared here.
template <class K>
void allow_smem(K* kernel, size_t bytes, const char* op) {
  if (bytes <= 48 * 1024) return;
  const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
  if (e != cudaSuccess) (void)cudaGetLastError();
  check_launch(e, op);
}

}  // namespace attn

// The tensor-core kernels (attention_tc.cu): arguments already checked, D <= 128, bf16 storage.
void attention_forward_tc(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a,
                          Stream s);
// The Hopper forward (attention_wgmma.cu): arguments checked, D <= 128, bf16, the path resolved to Wgmma.
void attention_forward_wgmma(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a,
                             Stream s);
// The tensor-core backward: dq/dk/dv accumulated (+=; any may be null); delta = rowsum(dO * O) [Hq, total_q].
void attention_backward_tc(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const float* lse, const float* delta,
                           const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a, Stream s);
// The Hopper wgmma backward (attention_wgmma_backward.cu): attention_backward_tc's semantics; D % 8 == 0, D <= 128,
// 16-byte aligned q / k / v / dout with strides % 8 == 0 (else a vr::Error); a stub without an sm_90a image.
void attention_backward_wgmma(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const float* lse, const float* delta,
                              const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a, Stream s);
// Whether attention_backward_wgmma takes this head dim and these pointers / strides (for a dispatch that falls back
// to the tc kernels instead of throwing).
bool attention_wgmma_backward_takes(const AttnArgs& a, const bf16* q, const bf16* k, const bf16* v, const bf16* dout);
// Its block shape: attention_wgmma_backward_tile() (cuda_kernels.h).

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
