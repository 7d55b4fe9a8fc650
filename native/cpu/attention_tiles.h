// Inner tiles of the flash-style attention kernels (attention_tiles.cc): small dense blocks in scratch
// buffers, multi-versioned for AVX-512 / AVX2 at run time.
#pragma once
#include <cstdint>

namespace vr::cpu {

// kt[d*ldk + j] = k[j*k_stride + d] for j < nk, d < D (the AVX-512 version zero-fills columns nk..ldk).
void transpose_k_block(float* kt, const float* k, int64_t k_stride, int nk, int D, int ldk);
// s[r*lds + j] = sum_d q[r*D + d] * kt[d*lds + j] for r < R, j < nk (the AVX-512 version fills all lds).
void scores_block(float* s, const float* q, const float* kt, int R, int nk, int D, int lds);
// True when the AVX-512 tiles run for this head dim and block width (CPU check at run time).
bool attention_tiles_avx512(int D, int lds);
// Online-softmax update of R rows with the score block s (masked entries are -inf):
//   m' = max(m, max_j s), p_j = exp(s_j - m'), l = l e^(m-m') + sum p, acc = acc e^(m-m') + sum_j p_j v_j.
// Rows whose scores are all -inf so far are left untouched. s is overwritten (scratch).
void softmax_pv_block(float* acc, float* m, float* l, float* s, const float* v, int64_t v_stride, int R,
                      int nk, int D, int lds);

// Backward: s (scores) -> P = exp(s - lse[r]) for j < lim[r] else 0; dp (dO.v) -> dS = P (dp - drow[r]).
void probs_dscores_block(float* s, float* dp, const float* lse, const float* drow, const int* lim, int R, int nk,
                         int lds);
// out[r, :] += sum_i coef[r*cs_out + i*cs_in] * src[i*src_stride, :] for r < n_out, i < n_in (D columns).
// Backward uses it for dQ += dS K (cs_out = lds, cs_in = 1) and dK += dS^T Q, dV += P^T dO (cs_out = 1,
// cs_in = lds).
void accumulate_block(float* out, int64_t out_stride, int n_out, const float* coef, int cs_out, int cs_in,
                      const float* src, int64_t src_stride, int n_in, int D);

}  // namespace vr::cpu
