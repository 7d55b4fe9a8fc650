// CPU backend of the op layer (namespace vr::cpu). native/ops/*.cc validate arguments and dispatch here;
// the signatures mirror native/ops/*.h, whose comments define the maths and layouts.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "ops/attention.h"
#include "ops/linear.h"

namespace vr::cpu {

// linear.cc
// Which GEMM code runs. Auto: oneDNN when built in, the AVX-512-BF16 GEMV for bf16 with M <= 4 when the CPU
// has it. The others force one path (tests and benchmarks compare them); OneDnn falls back to Builtin when
// oneDNN is not built in.
enum class GemmPath { Auto = 0, OneDnn = 1, Builtin = 2, Gemv = 3 };
void set_gemm_path(GemmPath p);
GemmPath gemm_path();
void linear_forward(float* out, const float* inp, const Linear& L, int64_t M, bool accumulate, bool padded);
void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const Linear& L, int64_t M, GradOverwrite overwrite);
const char* linear_backend_name(DType dtype);
bool linear_prepack(Linear& L, void (*consumed)(const void* p, size_t bytes));
void linear_forward_bf16in(float* out, const uint16_t* inp16, const Linear& L, int64_t M, bool accumulate,
                           bool padded);
int64_t gemm_padded_rows(int64_t M);
// swiglu_gemm.cc
bool swiglu_gemms_bf16(uint16_t* act16, uint16_t* silu16, const uint16_t* x16, const Linear& gate, const Linear& up,
                       int64_t M);
void round_to_bf16_op(uint16_t* dst, const float* src, int64_t n);

// attention_forward.cc / attention_backward.cc
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const AttnParams& p);
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out,
                        const float* lse, const float* q, const float* k, const float* v,
                        const AttnParams& p);

// norm.cc
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C,
                     float eps);
void rmsnorm_forward_bf16(uint16_t* out16, const float* inp, const float* weight, int64_t N, int64_t C, float eps);
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C);
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t N, int64_t C, float eps);
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C);

// rope.cc
void rope_forward(float* x, const float* cos, const float* sin, int64_t T, int H, int D, int64_t stride);
void rope_backward(float* dx, const float* cos, const float* sin, int64_t T, int H, int D, int64_t stride);

// activation.cc
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);
void swiglu_forward_bf16(uint16_t* out16, const float* gate, const float* up, int64_t n);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n);
void gelu_erf_forward(float* out, const float* inp, int64_t n);
void gelu_erf_forward_bf16(uint16_t* out16, const float* inp, int64_t n);
void gelu_erf_backward(float* dinp, const float* dout, const float* inp, int64_t n);
void add_inplace(float* a, const float* b, int64_t n);

// embedding.cc (ids are validated by the caller)
void embedding_forward(float* out, const int32_t* ids, int64_t T, const void* table, DType dtype, int64_t C);
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t T, int64_t C);

}  // namespace vr::cpu
