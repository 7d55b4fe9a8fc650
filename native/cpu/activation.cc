// Pointwise activations. Backward passes write (not accumulate) their outputs, so they may alias dout.
#include <algorithm>
#include <cmath>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
// GCC 12 warns inside its own AVX-512 intrinsics (_mm512_undefined_* placeholders): a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "core/parallel.h"

#include "cpu/cpu_ops.h"
#include "cpu/simd.h"
#if defined(__x86_64__) && defined(__GNUC__)
#include "cpu/avx512_helpers.h"
#endif

namespace vr::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // below this a parallel region costs more than it saves

inline float sigmoid(float z) { return 1.0f / (1.0f + fast_exp(-z)); }
}  // namespace

VR_CLONES void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const float g = gate[i];
    out[i] = g * sigmoid(g) * up[i];
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define VR_AVX512_ACT 1

namespace {
// The attention tiles' exp (avx512_helpers.h). Its target adds dq and fma to avx512f/bw/vl: every CPU with
// avx512_bf16, which gates these paths, has them.
using avx512::exp512;

// f32_to_bf16 (core/dtype.h) on 16 lanes: round to nearest even, NaNs kept quiet.
VR_AVX512 inline __m256i to_bf16_16(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
  const __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, rounded, quiet));
}

VR_AVX512 void swiglu_bf16_avx512(uint16_t* out16, const float* gate, const float* up, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i0 = 0; i0 < n; i0 += 1024) {
    const int64_t i1 = std::min(n, i0 + 1024);
    for (int64_t i = i0; i < i1; i += 16) {
      const __mmask16 m = i1 - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (i1 - i)) - 1);
      const __m512 g = _mm512_maskz_loadu_ps(m, gate + i), u = _mm512_maskz_loadu_ps(m, up + i);
      const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), g));
      const __m512 sig = _mm512_div_ps(_mm512_set1_ps(1.f), _mm512_add_ps(_mm512_set1_ps(1.f), e));
      _mm256_mask_storeu_epi16(out16 + i, m, to_bf16_16(_mm512_mul_ps(_mm512_mul_ps(g, sig), u)));
    }
  }
}
// GELU with erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7 in erf), rounded to bf16: the rounding (2^-9
// relative) dwarfs the approximation.
VR_AVX512 void gelu_bf16_avx512(uint16_t* out16, const float* inp, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i0 = 0; i0 < n; i0 += 1024) {
    const int64_t i1 = std::min(n, i0 + 1024);
    for (int64_t i = i0; i < i1; i += 16) {
      const __mmask16 m = i1 - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (i1 - i)) - 1);
      const __m512 z = _mm512_maskz_loadu_ps(m, inp + i);
      const __m512 x = _mm512_abs_ps(_mm512_mul_ps(z, _mm512_set1_ps(0.70710678118654752f)));
      const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.f), _mm512_fmadd_ps(x, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.f)));
      __m512 p = _mm512_set1_ps(1.061405429f);
      p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
      p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
      p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
      p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
      p = _mm512_mul_ps(p, t);
      const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(x, x)));
      const __m512 erf_abs = _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.f));  // erf(|z|/sqrt2)
      // 0.5 z (1 + sign(z) erf_abs) = 0.5 (z + |z| erf_abs)
      const __m512 g = _mm512_mul_ps(_mm512_set1_ps(0.5f), _mm512_fmadd_ps(_mm512_abs_ps(z), erf_abs, z));
      _mm256_mask_storeu_epi16(out16 + i, m, to_bf16_16(g));
    }
  }
}
}  // namespace
#endif

VR_CLONES static void swiglu_bf16_portable(uint16_t* out16, const float* gate, const float* up, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const float g = gate[i];
    out16[i] = f32_to_bf16(g * sigmoid(g) * up[i]);
  }
}

void swiglu_forward_bf16(uint16_t* out16, const float* gate, const float* up, int64_t n) {
#ifdef VR_AVX512_ACT
  // F + BW + VL: every CPU with AVX-512-BF16 has them (the flag cpu_features() reports for all three)
  if (cpu_features().avx512_bf16) return swiglu_bf16_avx512(out16, gate, up, n);
#endif
  swiglu_bf16_portable(out16, gate, up, n);
}

// d/dg [g s(g)] = s + g s (1 - s)
VR_CLONES void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                               int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const float g = gate[i], u = up[i], dy = dout[i];
    const float s = sigmoid(g);
    const float silu = g * s;
    if (dgate) dgate[i] = dy * u * (s + silu * (1.0f - s));
    if (dup) dup[i] = dy * silu;
  }
}

// erf has no vectorised form in libm without -ffast-math; these loops are a small part of the ViT merger.
void gelu_erf_forward(float* out, const float* inp, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const float z = inp[i];
    out[i] = 0.5f * z * (1.0f + std::erf(z * 0.70710678118654752f));
  }
}

void gelu_erf_forward_bf16(uint16_t* out16, const float* inp, int64_t n) {
#ifdef VR_AVX512_ACT
  if (cpu_features().avx512_bf16) return gelu_bf16_avx512(out16, inp, n);
#endif
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const float z = inp[i];
    out16[i] = f32_to_bf16(0.5f * z * (1.0f + std::erf(z * 0.70710678118654752f)));
  }
}

// d/dz = 0.5 (1 + erf(z/sqrt2)) + z * exp(-z^2/2) / sqrt(2 pi)
void gelu_erf_backward(float* dinp, const float* dout, const float* inp, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const float z = inp[i];
    const float cdf = 0.5f * (1.0f + std::erf(z * 0.70710678118654752f));
    const float pdf = std::exp(-0.5f * z * z) * 0.39894228040143268f;
    dinp[i] = dout[i] * (cdf + z * pdf);
  }
}

VR_CLONES void add_inplace(float* a, const float* b, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) a[i] += b[i];
}

}  // namespace vr::cpu
