// Portable (auto-vectorised, multi-versioned) attention tiles; see attention_tiles.h.
#include "cpu/attention_tiles.h"

#include <cmath>
#include <limits>

#include "core/parallel.h"
#include "cpu/attention_tiles_avx512.h"
#include "cpu/simd.h"

namespace vr::cpu {

bool attention_tiles_avx512(int D, int lds) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool cpu_ok = cpu_features().avx512f;
  return cpu_ok && D % 16 == 0 && lds == 64;
#else
  (void)D;
  (void)lds;
  return false;
#endif
}

void transpose_k_block(float* kt, const float* k, int64_t k_stride, int nk, int D, int ldk) {
  if (attention_tiles_avx512(D, ldk)) return avx512::transpose_k_block(kt, k, k_stride, nk, D);
  for (int j = 0; j < nk; j++) {
    const float* src = k + j * k_stride;
    for (int d = 0; d < D; d++) kt[d * ldk + j] = src[d];
  }
}

VR_CLONES static void scores_block_portable(float* s, const float* q, const float* kt, int R, int nk, int D,
                                             int lds) {
  for (int r = 0; r < R; r++) {
    float* srow = s + r * lds;
    const float* qr = q + r * D;
    for (int j = 0; j < nk; j++) srow[j] = 0.f;
    for (int d = 0; d < D; d++) {
      const float qd = qr[d];
      const float* kd = kt + d * lds;
#pragma omp simd
      for (int j = 0; j < nk; j++) srow[j] += qd * kd[j];
    }
  }
}

void scores_block(float* s, const float* q, const float* kt, int R, int nk, int D, int lds) {
  if (attention_tiles_avx512(D, lds)) return avx512::scores_block(s, q, kt, R, D);
  scores_block_portable(s, q, kt, R, nk, D, lds);
}

VR_CLONES static void softmax_pv_portable(float* acc, float* m, float* l, const float* s, const float* v,
                                          int64_t v_stride, int R, int nk, int D, int lds) {
  const float ninf = -std::numeric_limits<float>::infinity();
  float p[256];
  for (int r = 0; r < R; r++) {
    const float* srow = s + r * lds;
    float mx = ninf;
    for (int j = 0; j < nk; j++) mx = srow[j] > mx ? srow[j] : mx;
    const float mnew = mx > m[r] ? mx : m[r];
    if (mnew == ninf) continue;
    const float alpha = fast_exp(m[r] - mnew);  // m == -inf -> 0
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < nk; j++) {
      p[j] = fast_exp(srow[j] - mnew);
      sum += p[j];
    }
    m[r] = mnew;
    l[r] = l[r] * alpha + sum;
    float* a = acc + r * D;
#pragma omp simd
    for (int d = 0; d < D; d++) a[d] *= alpha;
    for (int j = 0; j < nk; j++) {
      const float pj = p[j];
      const float* vj = v + j * v_stride;
#pragma omp simd
      for (int d = 0; d < D; d++) a[d] += pj * vj[d];
    }
  }
}

void softmax_pv_block(float* acc, float* m, float* l, float* s, const float* v, int64_t v_stride, int R, int nk,
                      int D, int lds) {
  if (attention_tiles_avx512(D, lds)) return avx512::softmax_pv_block(acc, m, l, s, v, v_stride, R, nk, D);
  softmax_pv_portable(acc, m, l, s, v, v_stride, R, nk, D, lds);
}

VR_CLONES static void accumulate_portable(float* out, int64_t out_stride, int n_out, const float* coef, int cs_out,
                                          int cs_in, const float* src, int64_t src_stride, int n_in, int D) {
  for (int r = 0; r < n_out; r++) {
    float* o = out + r * out_stride;
    for (int i = 0; i < n_in; i++) {
      const float c = coef[r * cs_out + i * cs_in];
      if (c == 0.f) continue;
      const float* si = src + i * src_stride;
#pragma omp simd
      for (int d = 0; d < D; d++) o[d] += c * si[d];
    }
  }
}

void accumulate_block(float* out, int64_t out_stride, int n_out, const float* coef, int cs_out, int cs_in,
                      const float* src, int64_t src_stride, int n_in, int D) {
  // The AVX-512 tile reads coef with the block width as one of its strides; any width works there.
  if (attention_tiles_avx512(D, 64))
    return avx512::accumulate_block(out, out_stride, n_out, coef, cs_out, cs_in, src, src_stride, n_in, D);
  accumulate_portable(out, out_stride, n_out, coef, cs_out, cs_in, src, src_stride, n_in, D);
}

VR_CLONES static void probs_dscores_portable(float* s, float* dp, const float* lse, const float* drow, const int* lim,
                                             int R, int nk, int lds) {
  for (int r = 0; r < R; r++) {
    float* srow = s + r * lds;
    float* dprow = dp + r * lds;
    const float l = lse[r], dr = drow[r];
    const int L = lim[r];
#pragma omp simd
    for (int j = 0; j < nk; j++) {
      const float pj = fast_exp(srow[j] - l);
      srow[j] = j < L ? pj : 0.f;
      dprow[j] = srow[j] * (dprow[j] - dr);
    }
  }
}

void probs_dscores_block(float* s, float* dp, const float* lse, const float* drow, const int* lim, int R, int nk,
                         int lds) {
  if (attention_tiles_avx512(16, lds)) return avx512::probs_dscores_block(s, dp, lse, drow, lim, R, nk);
  probs_dscores_portable(s, dp, lse, drow, lim, R, nk, lds);
}

}  // namespace vr::cpu
