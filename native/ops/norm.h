// RMSNorm and LayerNorm over the last dimension, forward and backward side by side (llm.c notation).
#pragma once
#include <cstdint>

namespace vr {

// out[n,:] = weight * inp[n,:] / sqrt(mean(inp[n,:]^2) + eps); rstd[n] (optional) keeps 1/sqrt(...).
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C,
                     float eps);
// dinp += d/dinp, dweight += d/dweight (either may be null).
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C);

// out = (inp - mean) * rstd * weight + bias; mean/rstd [N] optional.
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t N, int64_t C, float eps);
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C);

}  // namespace vr
