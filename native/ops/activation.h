// Pointwise activations and small elementwise ops, forward and backward side by side.
#pragma once
#include <cstdint>

namespace vr {

// Backward passes of these pointwise ops WRITE their outputs (no accumulation), so they may alias dout
// (in place). swiglu_backward: dgate or dup may be null to skip it.

// SwiGLU: out = silu(gate) * up, silu(z) = z * sigmoid(z). out may alias gate or up.
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);
// out16 = bf16 bits of silu(gate) * up (RNE): the SwiGLU that feeds a BF16-weight GEMM, rounded in the same pass.
void swiglu_forward_bf16(uint16_t* out16, const float* gate, const float* up, int64_t n);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n);

// Exact erf GELU: 0.5 z (1 + erf(z / sqrt 2)), in place allowed (out == inp).
void gelu_erf_forward(float* out, const float* inp, int64_t n);
// out16 = bf16 bits of the GELU (RNE), for a BF16-weight GEMM: erf from a rational approximation (|err| < 1.5e-7)
// on AVX-512, far below the bf16 rounding.
void gelu_erf_forward_bf16(uint16_t* out16, const float* inp, int64_t n);
void gelu_erf_backward(float* dinp, const float* dout, const float* inp, int64_t n);

// a += b
void add_inplace(float* a, const float* b, int64_t n);

}  // namespace vr
