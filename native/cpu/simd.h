// Helpers for auto-vectorised kernels: multi-versioning and a vectorisable exp.
// The build uses no -march flag (the addon must run on any x86-64), so hot loops are compiled several times
// with VR_CLONES and the loader picks the best version for the CPU at run time (GCC target_clones + ifunc).
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define VR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VR_CLONES
#endif

namespace vr::cpu {

// exp(x) for float, ~1 ulp, written so that `#pragma omp simd` loops vectorise it (no libm call, no branch).
// Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, then a degree-7 Taylor polynomial (truncation < 2e-8
// relative). Inputs below -87.3 (including -inf) give 0; inputs above 88.7 saturate to +inf.
static inline float fast_exp(float x) {
  const float hi = 88.72283f, lo = -87.33654f;
  const bool under = x < lo;
  x = x > hi ? hi : x;
  x = x < lo ? lo : x;
  const float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;      // ln2 split: high part exact in float
  r = r - n * -2.12194440e-4f;         // low part
  float p = 1.f / 5040.f;
  p = p * r + 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  // 2^n: n in [-126, 128]; for n == 128 split in two multiplications to reach +inf without overflow in bits.
  const int32_t ni = int32_t(n);
  const int32_t n1 = ni >> 1, n2 = ni - n1;
  const uint32_t b1 = uint32_t(n1 + 127) << 23, b2 = uint32_t(n2 + 127) << 23;
  float s1, s2;
  std::memcpy(&s1, &b1, 4);
  std::memcpy(&s2, &b2, 4);
  const float y = p * s1 * s2;
  return under ? 0.f : y;
}

}  // namespace vr::cpu
