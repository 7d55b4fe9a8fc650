// Linear op: argument checks, then the backend. Only the CPU backend exists so far; a CUDA backend will be
// chosen here (by where the buffers live), keeping callers unchanged.
#include "ops/linear.h"

#include "core/error.h"
#include "core/parallel.h"
#include "cpu/cpu_ops.h"

namespace vr {

namespace {
void check_linear(const Linear& L, int64_t M, const char* op) {
  VR_CHECK(L.dtype == DType::F32 || L.dtype == DType::BF16, op, ": weight dtype ", dtype_name(L.dtype),
           " is not supported (F32 or BF16)");
  VR_CHECK(L.N >= 0 && L.K > 0, op, ": bad weight shape [", L.N, ", ", L.K, "]");
  VR_CHECK(L.w != nullptr || L.N == 0, op, ": weight pointer is null");
  VR_CHECK(M >= 0, op, ": negative row count ", M);
}
}  // namespace

void linear_forward(float* out, const float* inp, const Linear& L, int64_t M, bool accumulate, bool padded) {
  check_linear(L, M, "linear_forward");
  if (M == 0 || L.N == 0) return;
  VR_CHECK(out && inp, "linear_forward: null input or output buffer");
  apply_num_threads();
  cpu::linear_forward(out, inp, L, M, accumulate, padded);
}

void linear_forward_bf16in(float* out, const uint16_t* inp16, const Linear& L, int64_t M, bool accumulate,
                           bool padded) {
  check_linear(L, M, "linear_forward_bf16in");
  if (M == 0 || L.N == 0) return;
  VR_CHECK(out && inp16, "linear_forward_bf16in: null input or output buffer");
  apply_num_threads();
  cpu::linear_forward_bf16in(out, inp16, L, M, accumulate, padded);
}

int64_t linear_padded_rows(int64_t M) { return cpu::gemm_padded_rows(M); }

bool swiglu_gemms_bf16(uint16_t* act16, uint16_t* silu16, const uint16_t* x16, const Linear& gate, const Linear& up,
                       int64_t M) {
  check_linear(gate, M, "swiglu_gemms_bf16 (gate)");
  check_linear(up, M, "swiglu_gemms_bf16 (up)");
  VR_CHECK(gate.N == up.N && gate.K == up.K, "swiglu_gemms_bf16: gate [", gate.N, ", ", gate.K, "] and up [", up.N,
           ", ", up.K, "] differ in shape");
  if (M == 0 || gate.N == 0) return true;
  VR_CHECK(act16 && silu16 && x16, "swiglu_gemms_bf16: null buffer");
  apply_num_threads();
  return cpu::swiglu_gemms_bf16(act16, silu16, x16, gate, up, M);
}

void round_to_bf16(uint16_t* dst, const float* src, int64_t n) {
  VR_CHECK(n >= 0 && (n == 0 || (dst && src)), "round_to_bf16: bad buffers or count ", n);
  apply_num_threads();
  cpu::round_to_bf16_op(dst, src, n);
}

void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const Linear& L, int64_t M, GradOverwrite overwrite) {
  check_linear(L, M, "linear_backward");
  if (M == 0 || L.N == 0) return;
  VR_CHECK(dout, "linear_backward: dout is null");
  VR_CHECK(inp || !dweight, "linear_backward: dweight needs the forward input");
  apply_num_threads();
  cpu::linear_backward(dinp, dweight, dbias, dout, inp, L, M, overwrite);
}

bool linear_prepack(Linear& L, void (*consumed)(const void* p, size_t bytes)) {
  check_linear(L, 0, "linear_prepack");
  if (L.N == 0) return false;
  apply_num_threads();
  return cpu::linear_prepack(L, consumed);
}

const char* linear_backend_name(DType dtype) { return cpu::linear_backend_name(dtype); }

}  // namespace vr
