// Rotary position embedding, "rotate-half" convention, in place, forward and backward.
// x is [T, H, D] with row stride `stride` floats; cos/sin are per-token tables [T, D] whose two halves are
// equal (dims i and i+D/2 form a rotation pair). The model builds the tables: 2-D RoPE for the ViT and
// M-RoPE (t/h/w sections) for the LLM, from the exact float32 inverse-frequency tables.
//   x'[i]       = x[i]       * cos[i]       - x[i+D/2] * sin[i]
//   x'[i+D/2]   = x[i+D/2]   * cos[i+D/2]   + x[i]     * sin[i+D/2]
#pragma once
#include <cstdint>

namespace vr {

void rope_forward(float* x, const float* cos, const float* sin, int64_t T, int H, int D, int64_t stride);
// Backward is the inverse rotation of the gradient (in place).
void rope_backward(float* dx, const float* cos, const float* sin, int64_t T, int H, int D, int64_t stride);

}  // namespace vr
