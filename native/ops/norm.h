// RMSNorm and LayerNorm over the last dimension, forward and backward side by side (llm.c notation).
#pragma once
#include <cstdint>

namespace vr {

// out[n,:] = weight * inp[n,:] / sqrt(mean(inp[n,:]^2) + eps); rstd[n] (optional) keeps 1/sqrt(...).
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C,
                     float eps);
// The same, written as bf16 bits (RNE) for BF16-weight GEMMs (inference): equal to round_to_bf16 of the fp32
// output, without the fp32 tensor and the second pass.
void rmsnorm_forward_bf16(uint16_t* out16, const float* inp, const float* weight, int64_t N, int64_t C, float eps);
// dinp += d/dinp, dweight += d/dweight (either may be null).
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C);

// out = (inp - mean) * rstd * weight + bias; mean/rstd [N] optional.
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t N, int64_t C, float eps);
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C);

}  // namespace vr
