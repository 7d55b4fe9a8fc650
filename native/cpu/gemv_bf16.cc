// AVX-512-BF16 GEMV for decode; see gemv_bf16.h. Compiled with a function-level target attribute and only
// called after the run-time check, so the rest of the addon still runs on CPUs without AVX-512.
#include "cpu/gemv_bf16.h"

#include <algorithm>
#include <vector>

#include "core/dtype.h"
#include "core/parallel.h"
#include "core/error.h"

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

}  // namespace

void gemv_bf16(float* out, const float* inp, const uint16_t* W, const float* bias, int64_t M, int64_t N, int64_t K,
               bool accumulate) {
  VR_CHECK(M >= 1 && M <= kMaxRows, "gemv_bf16: M=", M, " out of range");
  static thread_local std::vector<uint16_t> xbuf;
  if (xbuf.size() < size_t(M * K)) xbuf.resize(size_t(M * K));
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

#endif

}  // namespace vr::cpu
