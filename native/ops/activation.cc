// Activation ops: argument checks, then the backend (CPU for now).
#include "ops/activation.h"

#include "core/error.h"
#include "core/parallel.h"
#include "cpu/cpu_ops.h"

namespace vr {

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
  VR_CHECK(n >= 0, "swiglu_forward: negative size ", n);
  if (n == 0) return;
  VR_CHECK(out && gate && up, "swiglu_forward: null buffer");
  apply_num_threads();
  cpu::swiglu_forward(out, gate, up, n);
}

void swiglu_forward_bf16(uint16_t* out16, const float* gate, const float* up, int64_t n) {
  VR_CHECK(n >= 0, "swiglu_forward_bf16: negative size ", n);
  if (n == 0) return;
  VR_CHECK(out16 && gate && up, "swiglu_forward_bf16: null buffer");
  apply_num_threads();
  cpu::swiglu_forward_bf16(out16, gate, up, n);
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n) {
  VR_CHECK(n >= 0, "swiglu_backward: negative size ", n);
  if (n == 0) return;
  VR_CHECK(dout && gate && up, "swiglu_backward: null buffer");
  apply_num_threads();
  cpu::swiglu_backward(dgate, dup, dout, gate, up, n);
}

void gelu_erf_forward(float* out, const float* inp, int64_t n) {
  VR_CHECK(n >= 0, "gelu_erf_forward: negative size ", n);
  if (n == 0) return;
  VR_CHECK(out && inp, "gelu_erf_forward: null buffer");
  apply_num_threads();
  cpu::gelu_erf_forward(out, inp, n);
}

void gelu_erf_forward_bf16(uint16_t* out16, const float* inp, int64_t n) {
  VR_CHECK(n >= 0, "gelu_erf_forward_bf16: negative size ", n);
  if (n == 0) return;
  VR_CHECK(out16 && inp, "gelu_erf_forward_bf16: null buffer");
  apply_num_threads();
  cpu::gelu_erf_forward_bf16(out16, inp, n);
}

void gelu_erf_backward(float* dinp, const float* dout, const float* inp, int64_t n) {
  VR_CHECK(n >= 0, "gelu_erf_backward: negative size ", n);
  if (n == 0) return;
  VR_CHECK(dinp && dout && inp, "gelu_erf_backward: null buffer");
  apply_num_threads();
  cpu::gelu_erf_backward(dinp, dout, inp, n);
}

void add_inplace(float* a, const float* b, int64_t n) {
  VR_CHECK(n >= 0, "add_inplace: negative size ", n);
  if (n == 0) return;
  VR_CHECK(a && b, "add_inplace: null buffer");
  apply_num_threads();
  cpu::add_inplace(a, b, n);
}

}  // namespace vr
