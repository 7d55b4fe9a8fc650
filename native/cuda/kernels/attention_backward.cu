// Flash-style attention backward (ops/attention.h semantics; tiling in attention_common.cuh). With
// P_ij = exp(scale q_i.k_j - lse_i) recomputed from the forward's lse and Delta_i = dO_i . O_i:
//   dV_j += sum_i P_ij dO_i,   dS_ij = P_ij (dO_i . v_j - Delta_i),
//   dK_j += scale sum_i dS_ij q_i,   dQ_i += scale sum_j dS_ij k_j.
// Three kernels, each output row with a single owner so that no atomics are needed (as on the CPU):
//   delta: Delta [Hq, total_q] into a stream-ordered scratch buffer;
//   dkdv:  one block per (key tile, kv head, segment), walking the query tiles of every query head that
//          shares the kv head (GQA sums happen in registers);
//   dq:    one block per (query tile, query head, segment), walking the key tiles.
// dQ recomputes S and dP (7 tile products instead of 5) in exchange for determinism and no fp32 dQ buffer.
// The host function also dispatches: after delta, the tensor-core kernels (attention_tc.cu) where
// attention_kernel_resolve picks them (bf16 storage).
#include "cuda/kernels/attention_common.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

using namespace attn;

inline size_t backward_smem(int D) {  // Q, dO [BR][D]; K, V [BC][D+1]; two [BR][BC] tiles; lse, Delta [BR]
  return sizeof(float) * (2 * size_t(kBR) * D + 2 * size_t(kBC) * (D + 1) + 2 * size_t(kBR) * kBC + 2 * kBR);
}

// One warp per (row, head): delta[h * total_q + row] = dO . O.
template <class T>
__global__ void attention_delta_kernel(float* delta, const T* dout, const T* out, AttnArgs a) {
  using namespace dev;
  const int lane = threadIdx.x & 31;
  const int64_t nwarps = int64_t(gridDim.x) * (blockDim.x >> 5);
  for (int64_t w = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5); w < a.total_q * a.Hq; w += nwarps) {
    const int64_t row = w / a.Hq;
    const int h = int(w % a.Hq);
    const T* o = out + row * a.o_stride + int64_t(h) * a.D;
    const T* d = dout + row * a.o_stride + int64_t(h) * a.D;
    float s = 0.f;
    for (int c = lane; c < a.D; c += 32) s += to_f32(o[c]) * to_f32(d[c]);
    s = warp_sum(s);
    if (lane == 0) delta[int64_t(h) * a.total_q + row] = s;
  }
}

// Loads the per-row lse and Delta of query rows [i0, i0 + BR) of head h (rows past the segment: lse -inf).
__device__ __forceinline__ void load_row_stats(float* lse_s, float* delta_s, const float* lse, const float* delta,
                                               const AttnArgs& a, const Segment& g, int h, int64_t i0) {
  for (int r = threadIdx.x; r < kBR; r += blockDim.x) {
    const bool ok = i0 + r < g.Lq;
    const int64_t idx = int64_t(h) * a.total_q + g.q0 + i0 + r;
    lse_s[r] = ok ? lse[idx] : -INFINITY;
    delta_s[r] = ok ? delta[idx] : 0.f;
  }
}

// P and dS of query row r against key `lane` of the tile; 0 where masked or the row saw no key at all.
__device__ __forceinline__ void prob_and_dscore(float& p, float& ds, const float* Qs, const float* dOs,
                                                const float* Ks, const float* Vs, const float* lse_s,
                                                const float* delta_s, int r, int kl, bool vis, float scale, int D) {
  p = 0.f;
  ds = 0.f;
  if (!vis || lse_s[r] == -INFINITY) return;
  p = expf(dot(Qs + r * D, Ks + kl * (D + 1), D) * scale - lse_s[r]);
  ds = p * (dot(dOs + r * D, Vs + kl * (D + 1), D) - delta_s[r]);
}

template <class T, int NC>
__global__ void __launch_bounds__(kThreads) attention_dkdv_kernel(T* dk, T* dv, const T* dout, const float* lse,
                                                                  const float* delta, const T* q, const T* k,
                                                                  const T* v, AttnArgs a) {
  using namespace dev;
  const Segment g = segment(a, blockIdx.z);
  const int kvh = blockIdx.y, G = a.Hq / a.Hkv, D = a.D;
  const int64_t j0 = int64_t(blockIdx.x) * kBC;
  if (j0 >= g.Lk) return;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

  CUDA_DYNAMIC_SHARED(float, smem);
  float* Ks = smem;                   // [BC][D+1]
  float* Vs = Ks + kBC * (D + 1);     // [BC][D+1]
  float* Qs = Vs + kBC * (D + 1);     // [BR][D]
  float* dOs = Qs + kBR * D;          // [BR][D]
  float* Ps = dOs + kBR * D;          // [BR][BC]
  float* dSs = Ps + kBR * kBC;        // [BR][BC]
  float* lse_s = dSs + kBR * kBC;     // [BR]
  float* delta_s = lse_s + kBR;       // [BR]
  load_tile(Ks, D + 1, k, a.k_stride, g.k0 + j0, g.k0 + g.Lk, int64_t(kvh) * D, kBC, D);
  load_tile(Vs, D + 1, v, a.v_stride, g.k0 + j0, g.k0 + g.Lk, int64_t(kvh) * D, kBC, D);

  float dk_acc[kKeysPerWarp][NC], dv_acc[kKeysPerWarp][NC];
  VR_UNROLL for (int jj = 0; jj < kKeysPerWarp; jj++)
    VR_UNROLL for (int t = 0; t < NC; t++) dk_acc[jj][t] = dv_acc[jj][t] = 0.f;
  // The first query row that sees key j0 is j0 - shift (causal); start at its tile.
  int64_t first = a.causal ? j0 - g.shift : 0;
  first = first < 0 ? 0 : first / kBR * kBR;

  for (int hh = 0; hh < G; hh++) {
    const int h = kvh * G + hh;
    for (int64_t i0 = first; i0 < g.Lq; i0 += kBR) {
      __syncthreads();  // K/V loaded; the previous Q/dO/P/dS tiles are consumed
      load_tile(Qs, D, q, a.q_stride, g.q0 + i0, g.q0 + g.Lq, int64_t(h) * D, kBR, D);
      load_tile(dOs, D, dout, a.o_stride, g.q0 + i0, g.q0 + g.Lq, int64_t(h) * D, kBR, D);
      load_row_stats(lse_s, delta_s, lse, delta, a, g, h, i0);
      __syncthreads();
      VR_UNROLL for (int rr = 0; rr < kRowsPerWarp; rr++) {
        const int r = warp * kRowsPerWarp + rr;
        float p, ds;
        prob_and_dscore(p, ds, Qs, dOs, Ks, Vs, lse_s, delta_s, r, lane, visible(a, g, i0 + r, j0 + lane), a.scale,
                        D);
        Ps[r * kBC + lane] = p;
        dSs[r * kBC + lane] = ds;
      }
      __syncthreads();  // every warp reads every row of P and dS below
      VR_UNROLL for (int jj = 0; jj < kKeysPerWarp; jj++) {
        const int j = warp * kKeysPerWarp + jj;
        for (int r = 0; r < kBR; r++) {
          const float p = Ps[r * kBC + j], ds = dSs[r * kBC + j];
          VR_UNROLL for (int t = 0; t < NC; t++) {
            const int c = lane + 32 * t;
            if (c < D) {
              dv_acc[jj][t] += p * dOs[r * D + c];
              dk_acc[jj][t] += ds * Qs[r * D + c];
            }
          }
        }
      }
    }
  }

  VR_UNROLL for (int jj = 0; jj < kKeysPerWarp; jj++) {
    const int64_t j = j0 + warp * kKeysPerWarp + jj;
    if (j >= g.Lk) continue;
    T* dkr = dk ? dk + (g.k0 + j) * a.k_stride + int64_t(kvh) * D : nullptr;
    T* dvr = dv ? dv + (g.k0 + j) * a.v_stride + int64_t(kvh) * D : nullptr;
    VR_UNROLL for (int t = 0; t < NC; t++) {
      const int c = lane + 32 * t;
      if (c >= D) continue;
      if (dkr) dkr[c] = from_f32<T>(to_f32(dkr[c]) + a.scale * dk_acc[jj][t]);
      if (dvr) dvr[c] = from_f32<T>(to_f32(dvr[c]) + dv_acc[jj][t]);
    }
  }
}

template <class T, int NC>
__global__ void __launch_bounds__(kThreads) attention_dq_kernel(T* dq, const T* dout, const float* lse,
                                                                const float* delta, const T* q, const T* k,
                                                                const T* v, AttnArgs a) {
  using namespace dev;
  const Segment g = segment(a, blockIdx.z);
  const int h = blockIdx.y, kvh = h / (a.Hq / a.Hkv), D = a.D;
  const int64_t i0 = int64_t(blockIdx.x) * kBR;
  if (i0 >= g.Lq) return;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

  CUDA_DYNAMIC_SHARED(float, smem);
  float* Ks = smem;                   // [BC][D+1]
  float* Vs = Ks + kBC * (D + 1);     // [BC][D+1]
  float* Qs = Vs + kBC * (D + 1);     // [BR][D]
  float* dOs = Qs + kBR * D;          // [BR][D]
  float* dSs = dOs + kBR * D;         // [BR][BC]
  float* lse_s = dSs + 2 * kBR * kBC; // [BR] (same layout as the dK/dV kernel)
  float* delta_s = lse_s + kBR;       // [BR]
  load_tile(Qs, D, q, a.q_stride, g.q0 + i0, g.q0 + g.Lq, int64_t(h) * D, kBR, D);
  load_tile(dOs, D, dout, a.o_stride, g.q0 + i0, g.q0 + g.Lq, int64_t(h) * D, kBR, D);
  load_row_stats(lse_s, delta_s, lse, delta, a, g, h, i0);

  float dq_acc[kRowsPerWarp][NC];
  VR_UNROLL for (int rr = 0; rr < kRowsPerWarp; rr++)
    VR_UNROLL for (int t = 0; t < NC; t++) dq_acc[rr][t] = 0.f;
  const int64_t last_row = (i0 + kBR < g.Lq ? i0 + kBR : g.Lq) - 1;
  const int64_t kend = a.causal ? (last_row + g.shift + 1 < g.Lk ? last_row + g.shift + 1 : g.Lk) : g.Lk;

  for (int64_t j0 = 0; j0 < kend; j0 += kBC) {
    __syncthreads();
    load_tile(Ks, D + 1, k, a.k_stride, g.k0 + j0, g.k0 + g.Lk, int64_t(kvh) * D, kBC, D);
    load_tile(Vs, D + 1, v, a.v_stride, g.k0 + j0, g.k0 + g.Lk, int64_t(kvh) * D, kBC, D);
    __syncthreads();
    VR_UNROLL for (int rr = 0; rr < kRowsPerWarp; rr++) {
      const int r = warp * kRowsPerWarp + rr;
      float p, ds;
      prob_and_dscore(p, ds, Qs, dOs, Ks, Vs, lse_s, delta_s, r, lane, visible(a, g, i0 + r, j0 + lane), a.scale, D);
      dSs[r * kBC + lane] = ds;
    }
    __syncwarp();  // this warp's dS rows are written
    VR_UNROLL for (int rr = 0; rr < kRowsPerWarp; rr++) {
      const float* dsr = dSs + (warp * kRowsPerWarp + rr) * kBC;
      for (int j = 0; j < kBC; j++) {
        const float ds = dsr[j];
        const float* kr = Ks + j * (D + 1);
        VR_UNROLL for (int t = 0; t < NC; t++) {
          const int c = lane + 32 * t;
          if (c < D) dq_acc[rr][t] += ds * kr[c];
        }
      }
    }
  }

  VR_UNROLL for (int rr = 0; rr < kRowsPerWarp; rr++) {
    const int64_t i = i0 + warp * kRowsPerWarp + rr;
    if (i >= g.Lq) continue;
    T* o = dq + (g.q0 + i) * a.q_stride + int64_t(h) * D;
    VR_UNROLL for (int t = 0; t < NC; t++) {
      const int c = lane + 32 * t;
      if (c < D) o[c] = from_f32<T>(to_f32(o[c]) + a.scale * dq_acc[rr][t]);
    }
  }
}

template <class T, int NC, class S>
void launch(S* dq, S* dk, S* dv, const S* dout, const float* lse, const float* delta, const S* q, const S* k,
            const S* v, const AttnArgs& a, Stream s) {
  const size_t smem = backward_smem(a.D);
  if ((dk || dv) && a.max_seqlen_k > 0) {
    allow_smem(attention_dkdv_kernel<T, NC>, smem, "attention_backward dk/dv");
    const dim3 grid(unsigned((a.max_seqlen_k + kBC - 1) / kBC), unsigned(a.Hkv), unsigned(a.nseq));
    check_launch(cuda_launch(attention_dkdv_kernel<T, NC>, grid, dim3(kThreads), smem, s, dptr(dk), dptr(dv),
                             dptr(dout), lse, delta, dptr(q), dptr(k), dptr(v), a),
                 "attention_backward dk/dv");
  }
  if (dq && a.max_seqlen_q > 0) {
    allow_smem(attention_dq_kernel<T, NC>, smem, "attention_backward dq");
    const dim3 grid(unsigned((a.max_seqlen_q + kBR - 1) / kBR), unsigned(a.Hq), unsigned(a.nseq));
    check_launch(cuda_launch(attention_dq_kernel<T, NC>, grid, dim3(kThreads), smem, s, dptr(dq), dptr(dout), lse,
                             delta, dptr(q), dptr(k), dptr(v), a),
                 "attention_backward dq");
  }
}

template <class T, class S>
void backward(S* dq, S* dk, S* dv, const S* dout, const S* out, const float* lse, const S* q, const S* k, const S* v,
              const AttnArgs& a, Stream s, AttnKernelPath path) {
  check_args(a, "attention_backward");
  // Wgmma: the Hopper backward (attention_wgmma_backward.cu) where it takes the strides and the tile switch does not
  // say "tc"; otherwise, and on the TensorCore path, the mma.sync backward.
  const AttnKernelPath resolved = attention_kernel_resolve(path, a.D, sizeof(S) == 2, s);
  const bool tc = resolved != AttnKernelPath::Scalar;
  if (a.nseq == 0 || a.total_q == 0 || (!dq && !dk && !dv)) return;
  VR_CHECK(dout && out && lse && q && k && v, "cuda attention_backward: null dout/out/lse/q/k/v buffer");
  const StreamScratch<float> scratch(size_t(a.total_q) * a.Hq, s, "attention_backward scratch");
  const float* delta = scratch.p;
  check_launch(cuda_launch(attention_delta_kernel<T>, dim3(grid_for(a.total_q * a.Hq, 8, 65535)), dim3(256), 0, s,
                           scratch.p, dptr(dout), dptr(out), a),
               "attention_backward delta");
  if constexpr (sizeof(S) == 2) {
    if (resolved == AttnKernelPath::Wgmma && attention_wgmma_backward_tile() != "tc" &&
        attention_wgmma_backward_takes(a, q, k, v, dout))
      return attention_backward_wgmma(dq, dk, dv, dout, lse, delta, q, k, v, a, s);
    if (tc) return attention_backward_tc(dq, dk, dv, dout, lse, delta, q, k, v, a, s);
  }
  (void)tc;
  switch (columns_per_lane(a.D)) {
    case 3: launch<T, 3>(dq, dk, dv, dout, lse, delta, q, k, v, a, s); break;
    case 4: launch<T, 4>(dq, dk, dv, dout, lse, delta, q, k, v, a, s); break;
    default: launch<T, 8>(dq, dk, dv, dout, lse, delta, q, k, v, a, s); break;
  }
}

}  // namespace

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse,
                        const float* q, const float* k, const float* v, const AttnArgs& a, Stream s,
                        AttnKernelPath path) {
  backward<float>(dq, dk, dv, dout, out, lse, q, k, v, a, s, path);
}
void attention_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* out, const float* lse,
                        const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a, Stream s,
                        AttnKernelPath path) {
  backward<__nv_bfloat16>(dq, dk, dv, dout, out, lse, q, k, v, a, s, path);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
