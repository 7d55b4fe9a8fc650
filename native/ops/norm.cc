// Norm ops: argument checks, then the backend (CPU for now).
#include "ops/norm.h"

#include "core/error.h"
#include "core/parallel.h"
#include "cpu/cpu_ops.h"

namespace vr {

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C,
                     float eps) {
  VR_CHECK(N >= 0 && C > 0, "rmsnorm_forward: bad shape [", N, ", ", C, "]");
  if (N == 0) return;
  VR_CHECK(out && inp && weight, "rmsnorm_forward: null buffer");
  apply_num_threads();
  cpu::rmsnorm_forward(out, rstd, inp, weight, N, C, eps);
}

void rmsnorm_forward_bf16(uint16_t* out16, const float* inp, const float* weight, int64_t N, int64_t C, float eps) {
  VR_CHECK(N >= 0 && C > 0, "rmsnorm_forward_bf16: bad shape [", N, ", ", C, "]");
  if (N == 0) return;
  VR_CHECK(out16 && inp && weight, "rmsnorm_forward_bf16: null buffer");
  apply_num_threads();
  cpu::rmsnorm_forward_bf16(out16, inp, weight, N, C, eps);
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C) {
  VR_CHECK(N >= 0 && C > 0, "rmsnorm_backward: bad shape [", N, ", ", C, "]");
  if (N == 0) return;
  VR_CHECK(dout && inp && weight && rstd, "rmsnorm_backward: dout, inp, weight and rstd are required");
  apply_num_threads();
  cpu::rmsnorm_backward(dinp, dweight, dout, inp, weight, rstd, N, C);
}

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t N, int64_t C, float eps) {
  VR_CHECK(N >= 0 && C > 0, "layernorm_forward: bad shape [", N, ", ", C, "]");
  if (N == 0) return;
  VR_CHECK(out && inp && weight, "layernorm_forward: null buffer");
  apply_num_threads();
  cpu::layernorm_forward(out, mean, rstd, inp, weight, bias, N, C, eps);
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C) {
  VR_CHECK(N >= 0 && C > 0, "layernorm_backward: bad shape [", N, ", ", C, "]");
  if (N == 0) return;
  VR_CHECK(dout && inp && weight && mean && rstd, "layernorm_backward: dout, inp, weight, mean and rstd are required");
  apply_num_threads();
  cpu::layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}

}  // namespace vr
