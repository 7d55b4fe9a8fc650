// BCM / DAC cross-attention core (method.md §6.1-6.2; layouts in cuda_kernels.h): per item l and head h, a few
// queries (Nq = 8) attend over N keys with a key padding mask; head dim 448 (D <= 512 supported). The
// in/out projections and the LayerNorm around it are GEMMs and a norm, not part of this file.
//
// Forward: one block per (head, item), one warp per query (queries w and w + 8 for Nq <= 16). Keys come in
// tiles of 16: lane (key = lane % 16, half = lane / 16) computes half of a 448-long dot product and a shuffle
// adds the halves, so all 32 lanes work; max/sum reductions run within each half-warp. Online softmax over
// the tiles, P V accumulated with lane-owned columns c = lane + 32 t. The K tile and then the V tile share one
// [16][D+1] shared buffer. A second kernel recomputes the scores to write the head-averaged probabilities
// exp(s - lse) / H (deterministic: one owner per output, no atomics).
// Backward, with dA the gradient of the head-averaged probabilities:
//   dP_hqj = dO_hq . v_hj + dA_qj / H,   Delta_hq = sum_j P_hqj dP_hqj = dO_hq . O_hq + sum_j P_hqj dA_qj / H,
//   dS = P (dP - Delta),  dq = scale dS K,  dk = scale dS^T Q,  dv = P^T dO.
// Kernels: delta (per head, item), dk/dv (per key tile, head, item) and dq (per head, item).
#include "cuda/kernels/common.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kWarps = 8, kThreads = kWarps * 32, kBC = 16;
constexpr int kMaxNq = 2 * kWarps, kQueriesPerWarp = 2;
constexpr int kMaxD = 512, kNC = kMaxD / 32;

// Query rows [Nq][D] of item l, head h (row stride `stride`).
template <class T>
__device__ __forceinline__ void load_queries(float* dst, const T* src, int64_t stride, const CrossAttnArgs& a, int l,
                                             int h) {
  using namespace dev;
  for (int idx = threadIdx.x; idx < a.Nq * a.D; idx += blockDim.x) {
    const int qi = idx / a.D, c = idx % a.D;
    dst[idx] = to_f32(src[(int64_t(l) * a.Nq + qi) * stride + int64_t(h) * a.D + c]);
  }
}
// Key rows [BC][D+1] (j0.. of item l, head h); rows past N are zero.
template <class T>
__device__ __forceinline__ void load_keys(float* dst, const T* src, int64_t stride, const CrossAttnArgs& a, int l,
                                          int h, int64_t j0) {
  using namespace dev;
  for (int idx = threadIdx.x; idx < kBC * a.D; idx += blockDim.x) {
    const int j = idx / a.D, c = idx % a.D;
    const int64_t jj = j0 + j;
    dst[j * (a.D + 1) + c] = jj < a.N ? to_f32(src[(int64_t(l) * a.N + jj) * stride + int64_t(h) * a.D + c]) : 0.f;
  }
}

__device__ __forceinline__ bool key_visible(const CrossAttnArgs& a, const uint8_t* key_pad, int l, int64_t j) {
  return j < a.N && !(key_pad && key_pad[int64_t(l) * a.N + j]);
}

// Dot product of a query row with key `lane % 16` of the tile, split over the two half-warps (every lane of the
// warp must call it); both halves return the full sum.
__device__ __forceinline__ float split_dot(const float* qrow, const float* tile, int D) {
  const int lane = threadIdx.x & 31, half = lane >> 4, Dh = (D + 1) / 2;
  const float* krow = tile + (lane & 15) * (D + 1);
  const int c1 = half ? D : Dh;
  float s = 0.f;
  for (int c = half * Dh; c < c1; c++) s += qrow[c] * krow[c];
  return s + __shfl_xor_sync(dev::kFullMask, s, 16);
}
__device__ __forceinline__ float half_max(float v) {
  for (int o = 8; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(dev::kFullMask, v, o));
  return v;
}
__device__ __forceinline__ float half_sum(float v) {
  for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync(dev::kFullMask, v, o);
  return v;
}

// Where one (item l, head h) problem keeps its things: statistics (lse, delta) [L, H, Nq], head-averaged
// probabilities [L, Nq, N], and the contiguous out / dout rows [L, Nq, H*D].
struct Problem {
  int H, Nq, D, l, h;
  int64_t N;
  __device__ __forceinline__ Problem(const CrossAttnArgs& a, int l_, int h_)
      : H(a.H), Nq(a.Nq), D(a.D), l(l_), h(h_), N(a.N) {}
  __device__ __forceinline__ int64_t stat(int qi) const { return (int64_t(l) * H + h) * Nq + qi; }
  __device__ __forceinline__ int64_t prob(int qi, int64_t j) const { return (int64_t(l) * Nq + qi) * N + j; }
  __device__ __forceinline__ int64_t out_row(int qi) const {
    return (int64_t(l) * Nq + qi) * (int64_t(H) * D) + int64_t(h) * D;
  }
};

// The query this warp handles in its slot u (queries w and w + kWarps), or -1: uniform over the warp, so the
// shuffles inside split_dot stay legal under `if (qi < 0) continue;`.
__device__ __forceinline__ int warp_query(int u, const CrossAttnArgs& a) {
  const int qi = (threadIdx.x >> 5) + kWarps * u;
  return qi < a.Nq ? qi : -1;
}

// Softmax probability of query row `qrow` against key `lane % 16` of the tile, recomputed from the saved lse
// (0 for a hidden key or a query that saw no key). Every lane of the warp must call it.
__device__ __forceinline__ float recompute_prob(const float* qrow, const float* tile, float lse, bool vis,
                                                const CrossAttnArgs& a) {
  const float s = split_dot(qrow, tile, a.D) * a.scale;
  if (!vis || lse == -INFINITY) return 0.f;
  return expf(s - lse);
}

inline size_t forward_smem(const CrossAttnArgs& a) {  // Q [Nq][D], K/V tile [BC][D+1], P [Nq][BC]
  return sizeof(float) * (size_t(a.Nq) * a.D + size_t(kBC) * (a.D + 1) + size_t(a.Nq) * kBC);
}
inline size_t backward_smem(const CrossAttnArgs& a) {  // + dO [Nq][D] and dS [Nq][BC]
  return forward_smem(a) + sizeof(float) * (size_t(a.Nq) * a.D + size_t(a.Nq) * kBC);
}

template <class T>
__global__ void __launch_bounds__(kThreads) cross_attention_forward_kernel(T* out, float* lse, const T* q,
                                                                           const T* k, const T* v,
                                                                           const uint8_t* key_pad, CrossAttnArgs a) {
  using namespace dev;
  const int h = blockIdx.x, l = blockIdx.y, D = a.D;
  const int lane = threadIdx.x & 31, kl = lane & 15;
  const Problem pr(a, l, h);
  CUDA_DYNAMIC_SHARED(float, smem);
  float* Qs = smem;                // [Nq][D]
  float* KV = Qs + a.Nq * D;       // [BC][D+1]
  float* Ps = KV + kBC * (D + 1);  // [Nq][BC]
  load_queries(Qs, q, a.q_stride, a, l, h);

  float m[kQueriesPerWarp], lsum[kQueriesPerWarp], acc[kQueriesPerWarp][kNC];
  VR_UNROLL for (int u = 0; u < kQueriesPerWarp; u++) {
    m[u] = -INFINITY;
    lsum[u] = 0.f;
    VR_UNROLL for (int t = 0; t < kNC; t++) acc[u][t] = 0.f;
  }
  for (int64_t j0 = 0; j0 < a.N; j0 += kBC) {
    __syncthreads();  // Q loaded; the previous V tile consumed
    load_keys(KV, k, a.k_stride, a, l, h, j0);
    __syncthreads();
    const bool vis = key_visible(a, key_pad, l, j0 + kl);
    VR_UNROLL for (int u = 0; u < kQueriesPerWarp; u++) {
      const int qi = warp_query(u, a);
      if (qi < 0) continue;
      const float s = split_dot(Qs + qi * D, KV, D) * a.scale;
      const float sv = vis ? s : -INFINITY;
      const float mn = fmaxf(m[u], half_max(sv));
      const float p = vis ? expf(s - mn) : 0.f;
      const float alpha = m[u] == -INFINITY ? 0.f : expf(m[u] - mn);
      lsum[u] = lsum[u] * alpha + half_sum(p);
      m[u] = mn;
      if (lane < 16) Ps[qi * kBC + kl] = p;
      VR_UNROLL for (int t = 0; t < kNC; t++) acc[u][t] *= alpha;
    }
    __syncthreads();  // K consumed, P written
    load_keys(KV, v, a.v_stride, a, l, h, j0);
    __syncthreads();
    VR_UNROLL for (int u = 0; u < kQueriesPerWarp; u++) {
      const int qi = warp_query(u, a);
      if (qi < 0) continue;
      for (int j = 0; j < kBC; j++) {
        const float p = Ps[qi * kBC + j];
        const float* vr = KV + j * (D + 1);
        VR_UNROLL for (int t = 0; t < kNC; t++) {
          const int c = lane + 32 * t;
          if (c < D) acc[u][t] += p * vr[c];
        }
      }
    }
  }
  VR_UNROLL for (int u = 0; u < kQueriesPerWarp; u++) {
    const int qi = warp_query(u, a);
    if (qi < 0) continue;
    const float inv = lsum[u] > 0.f ? 1.0f / lsum[u] : 0.f;
    T* o = out + pr.out_row(qi);
    VR_UNROLL for (int t = 0; t < kNC; t++) {
      const int c = lane + 32 * t;
      if (c < D) o[c] = from_f32<T>(acc[u][t] * inv);
    }
    if (lane == 0) lse[pr.stat(qi)] = lsum[u] > 0.f ? m[u] + logf(lsum[u]) : -INFINITY;
  }
}

// probs_mean[l, qi, j] = sum_h exp(s_hqj - lse_hq) / H; one block per (key tile, item), heads walked in turn.
template <class T>
__global__ void __launch_bounds__(kThreads) cross_attention_probs_kernel(float* probs_mean, const float* lse,
                                                                         const T* q, const T* k,
                                                                         const uint8_t* key_pad, CrossAttnArgs a) {
  const int l = blockIdx.y, D = a.D;
  const int64_t j0 = int64_t(blockIdx.x) * kBC;
  const int lane = threadIdx.x & 31, kl = lane & 15;
  CUDA_DYNAMIC_SHARED(float, smem);
  float* Qs = smem;
  float* Ks = Qs + a.Nq * D;
  const bool vis = key_visible(a, key_pad, l, j0 + kl);
  float sum[kQueriesPerWarp] = {};
  for (int h = 0; h < a.H; h++) {
    const Problem pr(a, l, h);
    __syncthreads();  // previous head's tiles consumed
    load_queries(Qs, q, a.q_stride, a, l, h);
    load_keys(Ks, k, a.k_stride, a, l, h, j0);
    __syncthreads();
    VR_UNROLL for (int u = 0; u < kQueriesPerWarp; u++) {
      const int qi = warp_query(u, a);
      if (qi >= 0) sum[u] += recompute_prob(Qs + qi * D, Ks, lse[pr.stat(qi)], vis, a);
    }
  }
  const Problem pr(a, l, 0);
  VR_UNROLL for (int u = 0; u < kQueriesPerWarp; u++) {
    const int qi = warp_query(u, a);
    if (qi >= 0 && lane < 16 && j0 + kl < a.N) probs_mean[pr.prob(qi, j0 + kl)] = sum[u] / float(a.H);
  }
}

// delta[l, h, qi] = dO . O + sum_j P_j dA_j / H (the second term only when dA is given).
template <class T>
__global__ void __launch_bounds__(kThreads) cross_attention_delta_kernel(float* delta, const T* dout, const T* out,
                                                                         const float* dprobs, const float* lse,
                                                                         const T* q, const T* k,
                                                                         const uint8_t* key_pad, CrossAttnArgs a) {
  using namespace dev;
  const int h = blockIdx.x, l = blockIdx.y, D = a.D;
  const int lane = threadIdx.x & 31, kl = lane & 15;
  const Problem pr(a, l, h);
  CUDA_DYNAMIC_SHARED(float, smem);
  float* Qs = smem;
  float* Ks = Qs + a.Nq * D;
  float part[kQueriesPerWarp] = {};
  VR_UNROLL for (int u = 0; u < kQueriesPerWarp; u++) {
    const int qi = warp_query(u, a);
    if (qi < 0) continue;
    const int64_t row = pr.out_row(qi);
    float s = 0.f;
    for (int c = lane; c < D; c += 32) s += to_f32(dout[row + c]) * to_f32(out[row + c]);
    part[u] = warp_sum(s);
  }
  if (dprobs) {
    load_queries(Qs, q, a.q_stride, a, l, h);
    float extra[kQueriesPerWarp] = {};
    for (int64_t j0 = 0; j0 < a.N; j0 += kBC) {
      __syncthreads();
      load_keys(Ks, k, a.k_stride, a, l, h, j0);
      __syncthreads();
      const bool vis = key_visible(a, key_pad, l, j0 + kl);
      VR_UNROLL for (int u = 0; u < kQueriesPerWarp; u++) {
        const int qi = warp_query(u, a);
        if (qi < 0) continue;
        const float p = recompute_prob(Qs + qi * D, Ks, lse[pr.stat(qi)], vis, a);
        // A query that saw no key (lse = -inf) adds nothing, not 0 * dprobs (NaN when dprobs is not finite).
        if (vis && lane < 16 && lse[pr.stat(qi)] != -INFINITY) extra[u] += p * dprobs[pr.prob(qi, j0 + kl)];
      }
    }
    VR_UNROLL for (int u = 0; u < kQueriesPerWarp; u++) part[u] += warp_sum(extra[u]) / float(a.H);
  }
  VR_UNROLL for (int u = 0; u < kQueriesPerWarp; u++) {
    const int qi = warp_query(u, a);
    if (qi >= 0 && lane == 0) delta[pr.stat(qi)] = part[u];
  }
}

// P and dS of query qi against key `lane % 16` of the tile: needs Q, K (for s) then dP from V or precomputed.
__device__ __forceinline__ float dscore(float p, float dp_v, float da, float delta, float inv_heads) {
  return p * (dp_v + da * inv_heads - delta);
}

template <class T>
__global__ void __launch_bounds__(kThreads) cross_attention_dkdv_kernel(T* dk, T* dv, const T* dout,
                                                                        const float* dprobs, const float* lse,
                                                                        const float* delta, const T* q, const T* k,
                                                                        const T* v, const uint8_t* key_pad,
                                                                        CrossAttnArgs a) {
  using namespace dev;
  const int h = blockIdx.y, l = blockIdx.z, D = a.D;
  const int64_t j0 = int64_t(blockIdx.x) * kBC;
  const int lane = threadIdx.x & 31, kl = lane & 15;
  const Problem pr(a, l, h);
  CUDA_DYNAMIC_SHARED(float, smem);
  float* Qs = smem;                // [Nq][D]
  float* KV = Qs + a.Nq * D;       // [BC][D+1]
  float* Ps = KV + kBC * (D + 1);  // [Nq][BC]
  float* dOs = Ps + a.Nq * kBC;    // [Nq][D]
  float* dSs = dOs + a.Nq * D;     // [Nq][BC]
  load_queries(Qs, q, a.q_stride, a, l, h);
  load_queries(dOs, dout, int64_t(a.H) * D, a, l, h);
  load_keys(KV, k, a.k_stride, a, l, h, j0);
  __syncthreads();
  const bool vis = key_visible(a, key_pad, l, j0 + kl);
  float p[kQueriesPerWarp] = {};
  VR_UNROLL for (int u = 0; u < kQueriesPerWarp; u++) {
    const int qi = warp_query(u, a);
    if (qi >= 0) p[u] = recompute_prob(Qs + qi * D, KV, lse[pr.stat(qi)], vis, a);
  }
  __syncthreads();  // K consumed
  load_keys(KV, v, a.v_stride, a, l, h, j0);
  __syncthreads();
  VR_UNROLL for (int u = 0; u < kQueriesPerWarp; u++) {
    const int qi = warp_query(u, a);
    if (qi < 0) continue;
    const float dpv = split_dot(dOs + qi * D, KV, D);
    const float da = dprobs && vis ? dprobs[pr.prob(qi, j0 + kl)] : 0.f;
    if (lane < 16) {
      Ps[qi * kBC + kl] = p[u];
      dSs[qi * kBC + kl] = dscore(p[u], dpv, da, delta[pr.stat(qi)], 1.0f / float(a.H));
    }
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < kBC * D; idx += blockDim.x) {
    const int j = idx / D, c = idx % D;
    if (j0 + j >= a.N) continue;
    float gk = 0.f, gv = 0.f;
    for (int qi = 0; qi < a.Nq; qi++) {
      gk += dSs[qi * kBC + j] * Qs[qi * D + c];
      gv += Ps[qi * kBC + j] * dOs[qi * D + c];
    }
    const int64_t row = int64_t(l) * a.N + j0 + j;
    if (dk) {
      T* d = dk + row * a.k_stride + int64_t(h) * D + c;
      *d = from_f32<T>(to_f32(*d) + a.scale * gk);
    }
    if (dv) {
      T* d = dv + row * a.v_stride + int64_t(h) * D + c;
      *d = from_f32<T>(to_f32(*d) + gv);
    }
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads) cross_attention_dq_kernel(T* dq, const T* dout, const float* dprobs,
                                                                      const float* lse, const float* delta,
                                                                      const T* q, const T* k, const T* v,
                                                                      const uint8_t* key_pad, CrossAttnArgs a) {
  using namespace dev;
  const int h = blockIdx.x, l = blockIdx.y, D = a.D;
  const int lane = threadIdx.x & 31, kl = lane & 15;
  const Problem pr(a, l, h);
  CUDA_DYNAMIC_SHARED(float, smem);
  float* Qs = smem;
  float* KV = Qs + a.Nq * D;
  float* dSs = KV + kBC * (D + 1);
  float* dOs = dSs + a.Nq * kBC;
  load_queries(Qs, q, a.q_stride, a, l, h);
  load_queries(dOs, dout, int64_t(a.H) * D, a, l, h);
  float acc[kQueriesPerWarp][kNC] = {};
  for (int64_t j0 = 0; j0 < a.N; j0 += kBC) {
    const bool vis = key_visible(a, key_pad, l, j0 + kl);
    __syncthreads();  // previous K tile consumed
    load_keys(KV, v, a.v_stride, a, l, h, j0);
    __syncthreads();
    float dpv[kQueriesPerWarp] = {};
    VR_UNROLL for (int u = 0; u < kQueriesPerWarp; u++) {
      const int qi = warp_query(u, a);
      if (qi >= 0) dpv[u] = split_dot(dOs + qi * D, KV, D);
    }
    __syncthreads();  // V consumed
    load_keys(KV, k, a.k_stride, a, l, h, j0);
    __syncthreads();
    VR_UNROLL for (int u = 0; u < kQueriesPerWarp; u++) {
      const int qi = warp_query(u, a);
      if (qi < 0) continue;
      const float p = recompute_prob(Qs + qi * D, KV, lse[pr.stat(qi)], vis, a);
      const float da = dprobs && vis ? dprobs[pr.prob(qi, j0 + kl)] : 0.f;
      if (lane < 16) dSs[qi * kBC + kl] = dscore(p, dpv[u], da, delta[pr.stat(qi)], 1.0f / float(a.H));
      __syncwarp();
      for (int j = 0; j < kBC; j++) {
        const float ds = dSs[qi * kBC + j];
        const float* kr = KV + j * (D + 1);
        VR_UNROLL for (int t = 0; t < kNC; t++) {
          const int c = lane + 32 * t;
          if (c < D) acc[u][t] += ds * kr[c];
        }
      }
    }
  }
  VR_UNROLL for (int u = 0; u < kQueriesPerWarp; u++) {
    const int qi = warp_query(u, a);
    if (qi < 0) continue;
    T* d = dq + (int64_t(l) * a.Nq + qi) * a.q_stride + int64_t(h) * D;
    VR_UNROLL for (int t = 0; t < kNC; t++) {
      const int c = lane + 32 * t;
      if (c < D) d[c] = from_f32<T>(to_f32(d[c]) + a.scale * acc[u][t]);
    }
  }
}

void check_args(const CrossAttnArgs& a, const char* op) {
  VR_CHECK(a.L >= 0 && a.N >= 0 && a.H > 0 && a.L <= 65535, "cuda ", op, ": bad shape L=", a.L, " N=", a.N,
           " H=", a.H);
  VR_CHECK(a.Nq > 0 && a.Nq <= kMaxNq, "cuda ", op, ": Nq=", a.Nq, " outside [1, ", kMaxNq, "]");
  VR_CHECK(a.D > 0 && a.D <= kMaxD, "cuda ", op, ": head dim ", a.D, " outside [1, ", kMaxD, "]");
  const int64_t W = int64_t(a.H) * a.D;
  VR_CHECK(a.q_stride >= W && a.k_stride >= W && a.v_stride >= W, "cuda ", op, ": a row stride is smaller than H*D=",
           W);
}

template <class K>
void allow_smem(K* kernel, size_t bytes, const char* op) {
  if (bytes > 48 * 1024)
    check_launch(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)), op);
}

template <class T, class S>
void forward(S* out, float* lse, float* probs_mean, const S* q, const S* k, const S* v, const uint8_t* key_pad,
             const CrossAttnArgs& a, Stream s) {
  check_args(a, "cross_attention_forward");
  if (a.L == 0) return;
  VR_CHECK(out && lse && q && (a.N == 0 || (k && v)), "cuda cross_attention_forward: null out/lse/q/k/v buffer");
  const size_t smem = forward_smem(a);
  allow_smem(cross_attention_forward_kernel<T>, smem, "cross_attention_forward");
  check_launch(cuda_launch(cross_attention_forward_kernel<T>, dim3(unsigned(a.H), unsigned(a.L)), dim3(kThreads), smem,
                           s, dptr(out), lse, dptr(q), dptr(k), dptr(v), key_pad, a),
               "cross_attention_forward");
  if (probs_mean && a.N > 0) {
    const size_t psmem = sizeof(float) * (size_t(a.Nq) * a.D + size_t(kBC) * (a.D + 1));
    allow_smem(cross_attention_probs_kernel<T>, psmem, "cross_attention_forward probs");
    const dim3 grid(unsigned((a.N + kBC - 1) / kBC), unsigned(a.L));
    check_launch(cuda_launch(cross_attention_probs_kernel<T>, grid, dim3(kThreads), psmem, s, probs_mean, lse,
                             dptr(q), dptr(k), key_pad, a),
                 "cross_attention_forward probs");
  }
}

template <class T, class S>
void backward(S* dq, S* dk, S* dv, const S* dout, const float* dprobs, const S* out, const float* lse, const S* q,
              const S* k, const S* v, const uint8_t* key_pad, const CrossAttnArgs& a, Stream s) {
  check_args(a, "cross_attention_backward");
  if (a.L == 0 || a.N == 0 || (!dq && !dk && !dv)) return;
  VR_CHECK(dout && out && lse && q && k && v, "cuda cross_attention_backward: null dout/out/lse/q/k/v buffer");
  const StreamScratch<float> scratch(size_t(a.L) * a.H * a.Nq, s, "cross_attention_backward scratch");
  const float* delta = scratch.p;
  const size_t dsmem = sizeof(float) * (size_t(a.Nq) * a.D + size_t(kBC) * (a.D + 1));
  allow_smem(cross_attention_delta_kernel<T>, dsmem, "cross_attention_backward delta");
  check_launch(cuda_launch(cross_attention_delta_kernel<T>, dim3(unsigned(a.H), unsigned(a.L)), dim3(kThreads), dsmem,
                           s, scratch.p, dptr(dout), dptr(out), dprobs, lse, dptr(q), dptr(k), key_pad, a),
               "cross_attention_backward delta");
  const size_t smem = backward_smem(a);
  if (dk || dv) {
    allow_smem(cross_attention_dkdv_kernel<T>, smem, "cross_attention_backward dk/dv");
    const dim3 grid(unsigned((a.N + kBC - 1) / kBC), unsigned(a.H), unsigned(a.L));
    check_launch(cuda_launch(cross_attention_dkdv_kernel<T>, grid, dim3(kThreads), smem, s, dptr(dk), dptr(dv),
                             dptr(dout), dprobs, lse, delta, dptr(q), dptr(k), dptr(v), key_pad, a),
                 "cross_attention_backward dk/dv");
  }
  if (dq) {
    allow_smem(cross_attention_dq_kernel<T>, smem, "cross_attention_backward dq");
    check_launch(cuda_launch(cross_attention_dq_kernel<T>, dim3(unsigned(a.H), unsigned(a.L)), dim3(kThreads), smem, s,
                             dptr(dq), dptr(dout), dprobs, lse, delta, dptr(q), dptr(k), dptr(v), key_pad, a),
                 "cross_attention_backward dq");
  }
}

}  // namespace

void cross_attention_forward(float* out, float* lse, float* probs_mean, const float* q, const float* k,
                             const float* v, const uint8_t* key_pad, const CrossAttnArgs& a, Stream s) {
  forward<float>(out, lse, probs_mean, q, k, v, key_pad, a, s);
}
void cross_attention_forward(bf16* out, float* lse, float* probs_mean, const bf16* q, const bf16* k, const bf16* v,
                             const uint8_t* key_pad, const CrossAttnArgs& a, Stream s) {
  forward<__nv_bfloat16>(out, lse, probs_mean, q, k, v, key_pad, a, s);
}
void cross_attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* dprobs_mean,
                              const float* out, const float* lse, const float* q, const float* k, const float* v,
                              const uint8_t* key_pad, const CrossAttnArgs& a, Stream s) {
  backward<float>(dq, dk, dv, dout, dprobs_mean, out, lse, q, k, v, key_pad, a, s);
}
void cross_attention_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const float* dprobs_mean,
                              const bf16* out, const float* lse, const bf16* q, const bf16* k, const bf16* v,
                              const uint8_t* key_pad, const CrossAttnArgs& a, Stream s) {
  backward<__nv_bfloat16>(dq, dk, dv, dout, dprobs_mean, out, lse, q, k, v, key_pad, a, s);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
