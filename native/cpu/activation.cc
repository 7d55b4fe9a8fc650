// Pointwise activations. Backward passes write (not accumulate) their outputs, so they may alias dout.
#include <cmath>

#include "cpu/cpu_ops.h"
#include "cpu/simd.h"

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

VR_CLONES void swiglu_forward_bf16(uint16_t* out16, const float* gate, const float* up, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const float g = gate[i];
    out16[i] = f32_to_bf16(g * sigmoid(g) * up[i]);
  }
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
