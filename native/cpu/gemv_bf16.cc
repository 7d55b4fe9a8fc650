// AVX-512-BF16 GEMV for decode; see gemv_bf16.h. Compiled with a function-level target attribute and only
// called after the run-time check, so the rest of the addon still runs on CPUs without AVX-512.
#include "cpu/gemv_bf16.h"

#include <algorithm>
#include <vector>

#include "core/dtype.h"
#include "core/parallel.h"
#include "core/error.h"
#include "core/grow.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
// GCC 12 warns inside its own AVX-512 reduce/extract intrinsics (_mm512_undefined_* placeholders): a known
// false positive, silenced for this file only.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define VR_HAVE_GEMV_BF16 1
#endif

namespace vr::cpu {

namespace {
constexpr int kMaxRows = 4;
}

int gemv_bf16_max_rows() { return kMaxRows; }
const char* gemv_bf16_isa() { return "avx512_bf16"; }

#ifdef VR_HAVE_GEMV_BF16

bool gemv_bf16_available() { return cpu_features().avx512_bf16; }

namespace {

#define VR_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

// Rows [n0, n1) of W against MR input rows (already bf16, row stride K). 4 weight rows at a time so that
// each input vector load feeds 4*MR dot products.
template <int MR>
VR_AVX512BF16 void gemv_rows(float* out, const uint16_t* x16, const uint16_t* W, const float* bias, int64_t n0,
                             int64_t n1, int64_t N, int64_t K, bool acc) {
  const int64_t kfull = K & ~int64_t(31);
  const __mmask32 tail = K - kfull ? __mmask32((1ull << (K - kfull)) - 1) : 0;
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) {
    __m512 s[MR][4];
    for (int m = 0; m < MR; m++)
      for (int r = 0; r < 4; r++) s[m][r] = _mm512_setzero_ps();
    const uint16_t* w0 = W + n * K;
    const uint16_t* w1 = w0 + K;
    const uint16_t* w2 = w1 + K;
    const uint16_t* w3 = w2 + K;
    for (int64_t k = 0; k < kfull; k += 32) {
      const __m512bh b0 = (__m512bh)_mm512_loadu_si512(w0 + k);
      const __m512bh b1 = (__m512bh)_mm512_loadu_si512(w1 + k);
      const __m512bh b2 = (__m512bh)_mm512_loadu_si512(w2 + k);
      const __m512bh b3 = (__m512bh)_mm512_loadu_si512(w3 + k);
      for (int m = 0; m < MR; m++) {
        const __m512bh a = (__m512bh)_mm512_loadu_si512(x16 + m * K + k);
        s[m][0] = _mm512_dpbf16_ps(s[m][0], a, b0);
        s[m][1] = _mm512_dpbf16_ps(s[m][1], a, b1);
        s[m][2] = _mm512_dpbf16_ps(s[m][2], a, b2);
        s[m][3] = _mm512_dpbf16_ps(s[m][3], a, b3);
      }
    }
    if (tail) {
      const __m512bh b0 = (__m512bh)_mm512_maskz_loadu_epi16(tail, w0 + kfull);
      const __m512bh b1 = (__m512bh)_mm512_maskz_loadu_epi16(tail, w1 + kfull);
      const __m512bh b2 = (__m512bh)_mm512_maskz_loadu_epi16(tail, w2 + kfull);
      const __m512bh b3 = (__m512bh)_mm512_maskz_loadu_epi16(tail, w3 + kfull);
      for (int m = 0; m < MR; m++) {
        const __m512bh a = (__m512bh)_mm512_maskz_loadu_epi16(tail, x16 + m * K + kfull);
        s[m][0] = _mm512_dpbf16_ps(s[m][0], a, b0);
        s[m][1] = _mm512_dpbf16_ps(s[m][1], a, b1);
        s[m][2] = _mm512_dpbf16_ps(s[m][2], a, b2);
        s[m][3] = _mm512_dpbf16_ps(s[m][3], a, b3);
      }
    }
    for (int m = 0; m < MR; m++)
      for (int r = 0; r < 4; r++) {
        float v = _mm512_reduce_add_ps(s[m][r]) + (bias ? bias[n + r] : 0.f);
        float* o = out + m * N + n + r;
        *o = acc ? *o + v : v;
      }
  }
  for (; n < n1; n++) {  // leftover rows, one at a time
    __m512 s[MR];
    for (int m = 0; m < MR; m++) s[m] = _mm512_setzero_ps();
    const uint16_t* w0 = W + n * K;
    for (int64_t k = 0; k < kfull; k += 32) {
      const __m512bh b0 = (__m512bh)_mm512_loadu_si512(w0 + k);
      for (int m = 0; m < MR; m++)
        s[m] = _mm512_dpbf16_ps(s[m], (__m512bh)_mm512_loadu_si512(x16 + m * K + k), b0);
    }
    if (tail) {
      const __m512bh b0 = (__m512bh)_mm512_maskz_loadu_epi16(tail, w0 + kfull);
      for (int m = 0; m < MR; m++)
        s[m] = _mm512_dpbf16_ps(s[m], (__m512bh)_mm512_maskz_loadu_epi16(tail, x16 + m * K + kfull), b0);
    }
    for (int m = 0; m < MR; m++) {
      float v = _mm512_reduce_add_ps(s[m]) + (bias ? bias[n] : 0.f);
      float* o = out + m * N + n;
      *o = acc ? *o + v : v;
    }
  }
}

template <int MR>
void gemv_parallel(float* out, const uint16_t* x16, const uint16_t* W, const float* bias, int64_t N, int64_t K,
                   bool acc) {
  // Contiguous row ranges per thread (multiples of 4 rows), so each thread streams its own part of W.
  const int64_t nt = std::max<int64_t>(1, std::min<int64_t>(num_threads(), (N + 63) / 64));
#pragma omp parallel for schedule(static, 1) num_threads(int(nt))
  for (int64_t t = 0; t < nt; t++) {
    const int64_t per = ((N + nt - 1) / nt + 3) & ~int64_t(3);
    const int64_t n0 = std::min(N, t * per), n1 = std::min(N, n0 + per);
    if (n0 < n1) gemv_rows<MR>(out, x16, W, bias, n0, n1, N, K, acc);
  }
}

// Packed panels [p0, p1) (see cpu/packed_weight.h): per k-pair, one broadcast of the MR input pairs and four
// 64-byte weight loads feed 4*MR dot products into 64 output columns.
template <int MR>
VR_AVX512BF16 void gemv_panels(float* out, const uint16_t* x16, const uint16_t* Wp, const float* bias, int64_t p0,
                               int64_t p1, int64_t N, int64_t kpad, int64_t pstride, bool acc) {
  for (int64_t p = p0; p < p1; p++) {
    __m512 s[MR][4];
    for (int m = 0; m < MR; m++)
      for (int j = 0; j < 4; j++) s[m][j] = _mm512_setzero_ps();
    const uint16_t* w = Wp + p * pstride;
    for (int64_t k = 0; k < kpad; k += 32, w += 2048) {
      for (int kk = 0; kk < 16; kk++) {
        const uint16_t* wk = w + kk * 128;
        const __m512bh b0 = (__m512bh)_mm512_load_si512(wk);
        const __m512bh b1 = (__m512bh)_mm512_load_si512(wk + 32);
        const __m512bh b2 = (__m512bh)_mm512_load_si512(wk + 64);
        const __m512bh b3 = (__m512bh)_mm512_load_si512(wk + 96);
        for (int m = 0; m < MR; m++) {
          int32_t pair;
          __builtin_memcpy(&pair, x16 + m * kpad + k + 2 * kk, sizeof pair);
          const __m512bh a = (__m512bh)_mm512_set1_epi32(pair);
          s[m][0] = _mm512_dpbf16_ps(s[m][0], a, b0);
          s[m][1] = _mm512_dpbf16_ps(s[m][1], a, b1);
          s[m][2] = _mm512_dpbf16_ps(s[m][2], a, b2);
          s[m][3] = _mm512_dpbf16_ps(s[m][3], a, b3);
        }
      }
    }
    const int64_t n0 = p * 64;
    for (int j = 0; j < 4; j++) {
      const int64_t c0 = n0 + 16 * j;
      if (c0 >= N) break;
      const __mmask16 mask = N - c0 >= 16 ? __mmask16(0xffff) : __mmask16((1u << (N - c0)) - 1);
      const __m512 bv = bias ? _mm512_maskz_loadu_ps(mask, bias + c0) : _mm512_setzero_ps();
      for (int m = 0; m < MR; m++) {
        float* o = out + m * N + c0;
        __m512 v = _mm512_add_ps(s[m][j], bv);
        if (acc) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, o));
        _mm512_mask_storeu_ps(o, mask, v);
      }
    }
  }
}

template <int MR>
void gemv_packed_parallel(float* out, const uint16_t* x16, const PackedWeight& W, const float* bias, bool acc) {
  const int64_t panels = W.n_pad / 64;
  const int64_t nt = std::max<int64_t>(1, std::min<int64_t>(num_threads(), panels));
  const uint16_t* Wp = static_cast<const uint16_t*>(W.data);
#pragma omp parallel for schedule(static, 1) num_threads(int(nt))
  for (int64_t t = 0; t < nt; t++) {
    const int64_t per = (panels + nt - 1) / nt;
    const int64_t p0 = std::min(panels, t * per), p1 = std::min(panels, p0 + per);
    if (p0 < p1) gemv_panels<MR>(out, x16, Wp, bias, p0, p1, W.N, W.k_pad, W.n_block_stride, acc);
  }
}

}  // namespace

void gemv_bf16_packed(float* out, const float* inp, const PackedWeight& W, const float* bias, int64_t M,
                      bool accumulate) {
  VR_CHECK(M >= 1 && M <= kMaxRows, "gemv_bf16_packed: M=", M, " out of range");
  VR_CHECK(W.vnni64, "gemv_bf16_packed: the weight is not in the BA16a64b2a layout");
  const int64_t K = W.K, kp = W.k_pad;
  static thread_local std::vector<uint16_t> xbuf;
  grow(xbuf, M * kp);
  for (int64_t m = 0; m < M; m++) {  // rows padded to k_pad with zeros (the padded weights are zero too)
    for (int64_t k = 0; k < K; k++) xbuf[size_t(m * kp + k)] = f32_to_bf16(inp[m * K + k]);
    for (int64_t k = K; k < kp; k++) xbuf[size_t(m * kp + k)] = 0;
  }
  switch (M) {
    case 1: gemv_packed_parallel<1>(out, xbuf.data(), W, bias, accumulate); break;
    case 2: gemv_packed_parallel<2>(out, xbuf.data(), W, bias, accumulate); break;
    case 3: gemv_packed_parallel<3>(out, xbuf.data(), W, bias, accumulate); break;
    default: gemv_packed_parallel<4>(out, xbuf.data(), W, bias, accumulate); break;
  }
}

void gemv_bf16(float* out, const float* inp, const uint16_t* W, const float* bias, int64_t M, int64_t N, int64_t K,
               bool accumulate) {
  VR_CHECK(M >= 1 && M <= kMaxRows, "gemv_bf16: M=", M, " out of range");
  static thread_local std::vector<uint16_t> xbuf;
  grow(xbuf, M * K);
  for (int64_t i = 0; i < M * K; i++) xbuf[size_t(i)] = f32_to_bf16(inp[i]);
  switch (M) {
    case 1: gemv_parallel<1>(out, xbuf.data(), W, bias, N, K, accumulate); break;
    case 2: gemv_parallel<2>(out, xbuf.data(), W, bias, N, K, accumulate); break;
    case 3: gemv_parallel<3>(out, xbuf.data(), W, bias, N, K, accumulate); break;
    default: gemv_parallel<4>(out, xbuf.data(), W, bias, N, K, accumulate); break;
  }
}

#else

bool gemv_bf16_available() { return false; }
void gemv_bf16(float*, const float*, const uint16_t*, const float*, int64_t, int64_t, int64_t, bool) {
  fail("gemv_bf16: not available on this CPU");
}
void gemv_bf16_packed(float*, const float*, const PackedWeight&, const float*, int64_t, bool) {
  fail("gemv_bf16_packed: not available on this CPU");
}

#endif

}  // namespace vr::cpu
