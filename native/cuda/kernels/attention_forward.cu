// Flash-style attention forward (ops/attention.h semantics; layout and tiling in attention_common.cuh).
// Grid: (query tiles of the longest segment, Hq, segments); a block whose tile lies past its segment's end
// exits at once. Per key tile: S = Q K^T * scale with the causal mask, online softmax (running max m, running
// sum l, accumulator rescaled by exp(m_old - m_new)), acc += P V. The score matrix never exists beyond one
// 16 x 32 tile. lse = m + log(l); rows that see no key get out 0 and lse -inf, as on the CPU.
// The host function also dispatches: the tensor-core kernel (attention_tc.cu) where attention_kernel_resolve
// picks it (bf16 storage).
#include "cuda/kernels/attention_common.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

using namespace attn;

inline size_t forward_smem(int D) {
  return sizeof(float) * (size_t(kBR) * D + size_t(kBC) * (D + 1) + size_t(kBC) * D + size_t(kBR) * kBC);
}

template <class T, int NC>
__global__ void __launch_bounds__(kThreads) attention_forward_kernel(T* out, float* lse, const T* q, const T* k,
                                                                     const T* v, AttnArgs a) {
  using namespace dev;
  const Segment g = segment(a, blockIdx.z);
  const int h = blockIdx.y, kvh = h / (a.Hq / a.Hkv), D = a.D;
  const int64_t i0 = int64_t(blockIdx.x) * kBR;
  if (i0 >= g.Lq) return;  // uniform over the block, before any barrier
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

  CUDA_DYNAMIC_SHARED(float, smem);
  float* Qs = smem;                    // [BR][D]
  float* Ks = Qs + kBR * D;            // [BC][D+1]
  float* Vs = Ks + kBC * (D + 1);      // [BC][D]
  float* Ps = Vs + kBC * D;            // [BR][BC]
  load_tile(Qs, D, q, a.q_stride, g.q0 + i0, g.q0 + g.Lq, int64_t(h) * D, kBR, D);

  float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][NC];
  VR_UNROLL for (int rr = 0; rr < kRowsPerWarp; rr++) {
    m[rr] = -INFINITY;
    l[rr] = 0.f;
    VR_UNROLL for (int t = 0; t < NC; t++) acc[rr][t] = 0.f;
  }
  // Keys past the last visible one of the tile's last row are never needed.
  const int64_t last_row = (i0 + kBR < g.Lq ? i0 + kBR : g.Lq) - 1;
  const int64_t kend = a.causal ? (last_row + g.shift + 1 < g.Lk ? last_row + g.shift + 1 : g.Lk) : g.Lk;

  for (int64_t j0 = 0; j0 < kend; j0 += kBC) {
    __syncthreads();  // Q is loaded; the previous K/V tile is consumed
    load_tile(Ks, D + 1, k, a.k_stride, g.k0 + j0, g.k0 + g.Lk, int64_t(kvh) * D, kBC, D);
    load_tile(Vs, D, v, a.v_stride, g.k0 + j0, g.k0 + g.Lk, int64_t(kvh) * D, kBC, D);
    __syncthreads();
    VR_UNROLL for (int rr = 0; rr < kRowsPerWarp; rr++) {
      const int r = warp * kRowsPerWarp + rr;
      const bool vis = visible(a, g, i0 + r, j0 + lane);
      const float s = vis ? dot(Qs + r * D, Ks + lane * (D + 1), D) * a.scale : -INFINITY;
      float alpha;
      Ps[r * kBC + lane] = online_softmax_step(s, vis, m[rr], l[rr], alpha);
      VR_UNROLL for (int t = 0; t < NC; t++) acc[rr][t] *= alpha;
    }
    __syncwarp();  // this warp's P rows are written
    VR_UNROLL for (int rr = 0; rr < kRowsPerWarp; rr++) {
      const float* pr = Ps + (warp * kRowsPerWarp + rr) * kBC;
      for (int j = 0; j < kBC; j++) {
        const float p = pr[j];
        const float* vr = Vs + j * D;
        VR_UNROLL for (int t = 0; t < NC; t++) {
          const int c = lane + 32 * t;
          if (c < D) acc[rr][t] += p * vr[c];
        }
      }
    }
  }

  VR_UNROLL for (int rr = 0; rr < kRowsPerWarp; rr++) {
    const int64_t i = i0 + warp * kRowsPerWarp + rr;
    if (i >= g.Lq) continue;
    const float inv = l[rr] > 0.f ? 1.0f / l[rr] : 0.f;
    T* o = out + (g.q0 + i) * a.o_stride + int64_t(h) * D;
    VR_UNROLL for (int t = 0; t < NC; t++) {
      const int c = lane + 32 * t;
      if (c < D) o[c] = from_f32<T>(acc[rr][t] * inv);
    }
    if (lse && lane == 0) lse[int64_t(h) * a.total_q + g.q0 + i] = l[rr] > 0.f ? m[rr] + logf(l[rr]) : -INFINITY;
  }
}

template <class T, int NC, class S>
void launch(S* out, float* lse, const S* q, const S* k, const S* v, const AttnArgs& a, Stream s) {
  const size_t smem = forward_smem(a.D);
  allow_smem(attention_forward_kernel<T, NC>, smem, "attention_forward");
  const dim3 grid(unsigned((a.max_seqlen_q + kBR - 1) / kBR), unsigned(a.Hq), unsigned(a.nseq));
  check_launch(cuda_launch(attention_forward_kernel<T, NC>, grid, dim3(kThreads), smem, s, dptr(out), lse, dptr(q),
                           dptr(k), dptr(v), a),
               "attention_forward");
}

template <class T, class S>
void forward(S* out, float* lse, const S* q, const S* k, const S* v, const AttnArgs& a, Stream s,
             AttnKernelPath path) {
  check_args(a, "attention_forward");
  const AttnKernelPath p = attention_kernel_resolve(path, a.D, sizeof(S) == 2, s);
  const bool tc = p == AttnKernelPath::TensorCore;
  if (a.nseq == 0 || a.max_seqlen_q == 0) return;
  VR_CHECK(out && q && k && v, "cuda attention_forward: null q/k/v/out buffer");
  if constexpr (sizeof(S) == 2) {
    if (p == AttnKernelPath::Wgmma) return attention_forward_wgmma(out, lse, q, k, v, a, s);
    if (tc) return attention_forward_tc(out, lse, q, k, v, a, s);
  }
  (void)tc;
  switch (columns_per_lane(a.D)) {
    case 3: return launch<T, 3>(out, lse, q, k, v, a, s);
    case 4: return launch<T, 4>(out, lse, q, k, v, a, s);
    default: return launch<T, 8>(out, lse, q, k, v, a, s);
  }
}

}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const AttnArgs& a,
                       Stream s, AttnKernelPath path) {
  forward<float>(out, lse, q, k, v, a, s, path);
}
void attention_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a,
                       Stream s, AttnKernelPath path) {
  forward<__nv_bfloat16>(out, lse, q, k, v, a, s, path);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
