// AVX-512 attention tiles. Register tiles: scores 6 query rows x 64 keys (24 accumulators), P.V 6 rows x 64
// head-dim columns (24 accumulators), so each loaded K/V vector feeds 6 FMAs. Compiled with a function-level
// target attribute; attention_tiles.cc calls these only after the run-time CPU check.
#include "cpu/attention_tiles_avx512.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
// GCC 12 warns inside its own AVX-512 reduce/extract intrinsics (_mm512_undefined_* placeholders): a known
// false positive, silenced for this file only.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <limits>

#include "cpu/avx512_helpers.h"

namespace vr::cpu::avx512 {

namespace {

constexpr int kLds = 64;  // key block width

template <int RT>
VR_AVX512 void scores_tile(float* s, const float* q, const float* kt, int D) {
  __m512 c[RT][4];
  for (int r = 0; r < RT; r++)
    for (int i = 0; i < 4; i++) c[r][i] = _mm512_setzero_ps();
  for (int d = 0; d < D; d++) {
    const float* kd = kt + d * kLds;
    const __m512 k0 = _mm512_loadu_ps(kd), k1 = _mm512_loadu_ps(kd + 16), k2 = _mm512_loadu_ps(kd + 32),
                 k3 = _mm512_loadu_ps(kd + 48);
    for (int r = 0; r < RT; r++) {
      const __m512 b = _mm512_set1_ps(q[r * D + d]);
      c[r][0] = _mm512_fmadd_ps(b, k0, c[r][0]);
      c[r][1] = _mm512_fmadd_ps(b, k1, c[r][1]);
      c[r][2] = _mm512_fmadd_ps(b, k2, c[r][2]);
      c[r][3] = _mm512_fmadd_ps(b, k3, c[r][3]);
    }
  }
  for (int r = 0; r < RT; r++)
    for (int i = 0; i < 4; i++) _mm512_storeu_ps(s + r * kLds + i * 16, c[r][i]);
}

// out[r, c0 : c0 + 16*CW] = out[r, ...] * alpha[r] + sum_i coef[r*cs_out + i*cs_in] * src[i*src_stride + c0 ...]
// for RT output rows (alpha null: no scaling). The forward's acc = acc*alpha + P V, the backward's dQ += dS K
// (cs_out = 64, cs_in = 1) and dK += dS^T Q, dV += P^T dO (cs_out = 1, cs_in = 64) are all this loop.
template <int RT, int CW>
VR_AVX512 void rows_tile(float* out, int64_t out_stride, const float* alpha, const float* coef, int cs_out,
                         int cs_in, const float* src, int64_t src_stride, int n_in, int c0) {
  __m512 a[RT][CW];
  for (int r = 0; r < RT; r++) {
    const __m512 al = _mm512_set1_ps(alpha ? alpha[r] : 1.f);
    for (int i = 0; i < CW; i++) a[r][i] = _mm512_mul_ps(_mm512_loadu_ps(out + r * out_stride + c0 + i * 16), al);
  }
  for (int j = 0; j < n_in; j++) {
    const float* sj = src + j * src_stride + c0;
    __m512 vv[CW];
    for (int i = 0; i < CW; i++) vv[i] = _mm512_loadu_ps(sj + i * 16);
    for (int r = 0; r < RT; r++) {
      const __m512 b = _mm512_set1_ps(coef[r * cs_out + j * cs_in]);
      for (int i = 0; i < CW; i++) a[r][i] = _mm512_fmadd_ps(b, vv[i], a[r][i]);
    }
  }
  for (int r = 0; r < RT; r++)
    for (int i = 0; i < CW; i++) _mm512_storeu_ps(out + r * out_stride + c0 + i * 16, a[r][i]);
}

template <int RT>
VR_AVX512 void rows_all_columns(float* out, int64_t out_stride, const float* alpha, const float* coef, int cs_out,
                                int cs_in, const float* src, int64_t src_stride, int n_in, int D) {
  int c0 = 0;
  for (; c0 + 64 <= D; c0 += 64) rows_tile<RT, 4>(out, out_stride, alpha, coef, cs_out, cs_in, src, src_stride, n_in, c0);
  switch ((D - c0) / 16) {
    case 3: rows_tile<RT, 3>(out, out_stride, alpha, coef, cs_out, cs_in, src, src_stride, n_in, c0); break;
    case 2: rows_tile<RT, 2>(out, out_stride, alpha, coef, cs_out, cs_in, src, src_stride, n_in, c0); break;
    case 1: rows_tile<RT, 1>(out, out_stride, alpha, coef, cs_out, cs_in, src, src_stride, n_in, c0); break;
    default: break;
  }
}

// Dispatches up to 6 output rows to the matching register tile.
VR_AVX512 void rows_block(int rt, float* out, int64_t out_stride, const float* alpha, const float* coef, int cs_out,
                          int cs_in, const float* src, int64_t src_stride, int n_in, int D) {
  switch (rt) {
    case 6: rows_all_columns<6>(out, out_stride, alpha, coef, cs_out, cs_in, src, src_stride, n_in, D); break;
    case 5: rows_all_columns<5>(out, out_stride, alpha, coef, cs_out, cs_in, src, src_stride, n_in, D); break;
    case 4: rows_all_columns<4>(out, out_stride, alpha, coef, cs_out, cs_in, src, src_stride, n_in, D); break;
    case 3: rows_all_columns<3>(out, out_stride, alpha, coef, cs_out, cs_in, src, src_stride, n_in, D); break;
    case 2: rows_all_columns<2>(out, out_stride, alpha, coef, cs_out, cs_in, src, src_stride, n_in, D); break;
    default: rows_all_columns<1>(out, out_stride, alpha, coef, cs_out, cs_in, src, src_stride, n_in, D); break;
  }
}

}  // namespace

VR_AVX512 void transpose_k_block(float* kt, const float* k, int64_t k_stride, int nk, int D) {
  for (int j0 = 0; j0 < kLds; j0 += 16) {
    for (int d0 = 0; d0 < D; d0 += 16) {
      __m512 r[16];
      for (int i = 0; i < 16; i++)
        r[i] = j0 + i < nk ? _mm512_loadu_ps(k + (j0 + i) * k_stride + d0) : _mm512_setzero_ps();
      transpose16(r);
      for (int i = 0; i < 16; i++) _mm512_storeu_ps(kt + (d0 + i) * kLds + j0, r[i]);
    }
    if (j0 + 16 >= nk) {  // the rest of the block stays zero so scores there are finite
      for (int jz = j0 + 16; jz < kLds; jz += 16)
        for (int d = 0; d < D; d++) _mm512_storeu_ps(kt + d * kLds + jz, _mm512_setzero_ps());
      break;
    }
  }
}

VR_AVX512 void scores_block(float* s, const float* q, const float* kt, int R, int D) {
  int r = 0;
  for (; r + 6 <= R; r += 6) scores_tile<6>(s + r * kLds, q + r * D, kt, D);
  switch (R - r) {
    case 5: scores_tile<5>(s + r * kLds, q + r * D, kt, D); break;
    case 4: scores_tile<4>(s + r * kLds, q + r * D, kt, D); break;
    case 3: scores_tile<3>(s + r * kLds, q + r * D, kt, D); break;
    case 2: scores_tile<2>(s + r * kLds, q + r * D, kt, D); break;
    case 1: scores_tile<1>(s + r * kLds, q + r * D, kt, D); break;
    default: break;
  }
}

VR_AVX512 void softmax_pv_block(float* acc, float* m, float* l, float* s, const float* v, int64_t v_stride, int R,
                                int nk, int D) {
  const float ninf = -std::numeric_limits<float>::infinity();
  const __m512 vninf = _mm512_set1_ps(ninf);
  float alpha[6];
  for (int r0 = 0; r0 < R; r0 += 6) {
    const int rt = R - r0 < 6 ? R - r0 : 6;
    for (int rr = 0; rr < rt; rr++) {
      const int r = r0 + rr;
      float* srow = s + r * kLds;
      __m512 x[4];
      __m512 mx = vninf;
      for (int i = 0; i < 4; i++) {
        const int left = nk - i * 16;
        const __mmask16 mk = left >= 16 ? __mmask16(0xffff) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
        x[i] = _mm512_mask_loadu_ps(vninf, mk, srow + i * 16);
        mx = _mm512_max_ps(mx, x[i]);
      }
      const float bm = _mm512_reduce_max_ps(mx);
      const float mnew = bm > m[r] ? bm : m[r];
      if (mnew == ninf) {  // nothing visible yet: leave the row alone (P = 0)
        alpha[rr] = 1.f;
        for (int i = 0; i < 4; i++) _mm512_storeu_ps(srow + i * 16, _mm512_setzero_ps());
        continue;
      }
      const __m512 vm = _mm512_set1_ps(mnew);
      __m512 sum = _mm512_setzero_ps();
      for (int i = 0; i < 4; i++) {
        const __m512 pexp = exp512(_mm512_sub_ps(x[i], vm));
        sum = _mm512_add_ps(sum, pexp);
        _mm512_storeu_ps(srow + i * 16, pexp);
      }
      alpha[rr] = m[r] == ninf ? 0.f : _mm512_cvtss_f32(exp512(_mm512_set1_ps(m[r] - mnew)));
      l[r] = l[r] * alpha[rr] + _mm512_reduce_add_ps(sum);
      m[r] = mnew;
    }
    rows_block(rt, acc + r0 * D, D, alpha, s + r0 * kLds, kLds, 1, v, v_stride, nk, D);
  }
}

VR_AVX512 void probs_dscores_block(float* s, float* dp, const float* lse, const float* drow, const int* lim, int R,
                                   int nk) {
  (void)nk;  // lim[r] <= nk already
  for (int r = 0; r < R; r++) {
    float* srow = s + r * kLds;
    float* dprow = dp + r * kLds;
    const __m512 l = _mm512_set1_ps(lse[r]), dr = _mm512_set1_ps(drow[r]);
    const int L = lim[r];
    for (int i = 0; i < 4; i++) {
      const int left = L - i * 16;
      const __mmask16 mk = left >= 16 ? __mmask16(0xffff) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
      const __m512 pj = _mm512_maskz_mov_ps(mk, exp512(_mm512_sub_ps(_mm512_loadu_ps(srow + i * 16), l)));
      _mm512_storeu_ps(srow + i * 16, pj);
      _mm512_storeu_ps(dprow + i * 16, _mm512_mul_ps(pj, _mm512_sub_ps(_mm512_loadu_ps(dprow + i * 16), dr)));
    }
  }
}

VR_AVX512 void accumulate_block(float* out, int64_t out_stride, int n_out, const float* coef, int cs_out, int cs_in,
                                const float* src, int64_t src_stride, int n_in, int D) {
  for (int r0 = 0; r0 < n_out; r0 += 6) {
    const int rt = n_out - r0 < 6 ? n_out - r0 : 6;
    rows_block(rt, out + r0 * out_stride, out_stride, nullptr, coef + r0 * cs_out, cs_out, cs_in, src, src_stride,
               n_in, D);
  }
}

}  // namespace vr::cpu::avx512

#endif
