// The GEMM entry point of the CUDA backend: cuBLASLt when it was loaded at run time (cublaslt_loader.h), our own
// kernel (kernels/gemm.h) otherwise, or per call when cuBLASLt has no algorithm for a case. The contract is the
// kernel's: row-major C[m,n] = op(A) op(B) (+ bias) (+ C), bf16 in, fp32 accumulate, fp32 or bf16 out.
//
// VREFLECT_GEMM=auto|cublaslt|kernel forces a choice (auto when unset). Forcing cublaslt where it cannot run is
// an error (one line naming why), never a silent fallback.
#pragma once
#include <cstdint>

#include "cuda/kernels/gemm.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

// Gemv: the skinny kernel (kernels/gemv.cu) that Auto picks for linear forwards of at most kGemvMaxRows rows
// (decode and latent steps) unless VREFLECT_GEMV=off; a forced cublaslt / kernel never turns into it.
enum class GemmImpl { Auto, CublasLt, Kernel, Gemv };

// "cublaslt", "vreflect-kernel", "vreflect-gemv" (the bench's "impl" names), "auto".
const char* gemm_impl_name(GemmImpl impl);
// VREFLECT_GEMM as a GemmImpl (Auto when unset or "auto"); vr::Error on any other value. Read once, at the first
// GEMM, and kept (cuda::env_switches_changed, cuda_kernels.h, makes the next one read it again).
GemmImpl gemm_impl_from_env();
// VREFLECT_GEMV (auto|off) as a switch: true unless "off"; vr::Error on any other value. Read once, like VREFLECT_GEMM.
bool gemv_enabled_from_env();

// Operand spans (scale audit). cuBLASLt takes sizes and strides as 64-bit values but accepts only int32-sized
// ones, and an operand spanning 2^31 elements or more has been seen to fail at run time (CUBLAS_STATUS_EXECUTION_
// FAILED). At the 7B's sizes only the all-positions prompt logits reach it (17k rows x 152,064 = 2.6e9 elements), so
// the dispatcher cuts such a GEMM into row pieces whose A and C spans stay below the limit (B is not cut: when B
// alone is too large, or a single row is, the GEMM goes to our kernel, whose indices are 64-bit).
constexpr int64_t kGemmMaxSpan = (int64_t(1) << 31) - 1;  // elements one operand may span in one cuBLASLt call
// Elements a row-major [rows, cols] matrix with row stride ld spans: (rows - 1) * ld + cols (0 when empty).
int64_t gemm_operand_span(int64_t rows, int64_t cols, int64_t ld);
// The most rows of C (m) one call may take so that op(A)'s and C's spans stay <= max_span: g.m when the whole GEMM
// fits, 0 when no row count does (B too large, or one row's span over the limit). g has its strides resolved
// (checked_gemm_args).
int64_t gemm_rows_per_call(const GemmArgs& g, int64_t max_span = kGemmMaxSpan);
// For tests: the span limit the dispatcher cuts at (0 restores kGemmMaxSpan), and the row pieces it has run.
void gemm_set_max_span_for_tests(int64_t max_span);
int64_t gemm_split_pieces();

// Runs one GEMM on stream s; `want` Auto defers to VREFLECT_GEMM. Returns the implementation that ran.
GemmImpl gemm(float* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s = nullptr,
              GemmImpl want = GemmImpl::Auto);
GemmImpl gemm(bf16* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s = nullptr,
              GemmImpl want = GemmImpl::Auto);

// A Linear (ops/linear.h layouts, W [N, K]): out[M,N] (+)= inp[M,K] @ W^T (+ bias).
GemmImpl gemm_linear_forward(float* out, const bf16* inp, const bf16* w, const float* bias, int64_t M, int64_t N,
                             int64_t K, bool accumulate = false, Stream s = nullptr, GemmImpl want = GemmImpl::Auto);
GemmImpl gemm_linear_forward(bf16* out, const bf16* inp, const bf16* w, const float* bias, int64_t M, int64_t N,
                             int64_t K, bool accumulate = false, Stream s = nullptr, GemmImpl want = GemmImpl::Auto);
// The SwiGLU MLP's gate / up half (W_gate, W_up [F, K], dense): out[M, F] = silu(inp W_gate^T) * (inp W_up^T), each
// product rounded to bf16 first. Few rows (decode / latent steps) take gemv_swiglu - one pass, one launch - where
// gemm() would take gemv (Auto, M <= kGemvMaxRows, VREFLECT_GEMV not off); otherwise two GEMMs into out and
// up_scratch [M, F], then swiglu_forward. The values are the same either way when both run the gemv kernel.
// Returns Gemv when fused, else what the GEMMs ran.
GemmImpl gemm_swiglu_forward(bf16* out, bf16* up_scratch, const bf16* inp, const bf16* w_gate, const bf16* w_up,
                             int64_t M, int64_t F, int64_t K, Stream s = nullptr, GemmImpl want = GemmImpl::Auto);
// dinp[M,K] += dout @ W; dweight[N,K] += dout^T @ inp; dbias[N] += column sums of dout. Any output may be null.
void gemm_linear_backward(float* dinp, float* dweight, float* dbias, const bf16* dout, const bf16* inp,
                          const bf16* w, int64_t M, int64_t N, int64_t K, Stream s = nullptr,
                          GemmImpl want = GemmImpl::Auto);

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
