// RoPE op: argument checks, then the backend (CPU for now).
#include "ops/rope.h"

#include "core/error.h"
#include "core/parallel.h"
#include "cpu/cpu_ops.h"

namespace vr {

namespace {
void check(const float* x, const float* cos, const float* sin, int64_t T, int H, int D, int64_t stride,
           const char* op) {
  VR_CHECK(T >= 0 && H > 0 && D > 0, op, ": bad shape T=", T, " H=", H, " D=", D);
  VR_CHECK(D % 2 == 0, op, ": head dim ", D, " is odd (rotate-half needs pairs)");
  VR_CHECK(stride >= int64_t(H) * D, op, ": row stride ", stride, " < H*D=", int64_t(H) * D);
  VR_CHECK(T == 0 || (x && cos && sin), op, ": null buffer");
}
}  // namespace

void rope_forward(float* x, const float* cos, const float* sin, int64_t T, int H, int D, int64_t stride) {
  check(x, cos, sin, T, H, D, stride, "rope_forward");
  if (T == 0) return;
  apply_num_threads();
  cpu::rope_forward(x, cos, sin, T, H, D, stride);
}

void rope_backward(float* dx, const float* cos, const float* sin, int64_t T, int H, int D, int64_t stride) {
  check(dx, cos, sin, T, H, D, stride, "rope_backward");
  if (T == 0) return;
  apply_num_threads();
  cpu::rope_backward(dx, cos, sin, T, H, D, stride);
}

}  // namespace vr
