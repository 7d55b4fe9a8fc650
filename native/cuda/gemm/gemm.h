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
// VREFLECT_GEMM as a GemmImpl (Auto when unset or "auto"); vr::Error on any other value. Reads it now; the GEMMs
// read it once, at the first one, and keep it.
GemmImpl gemm_impl_from_env();
// VREFLECT_GEMV (auto|off) as a switch: true unless "off"; vr::Error on any other value. Read once, like VREFLECT_GEMM.
bool gemv_enabled_from_env();
// Makes the next GEMM read VREFLECT_GEMM and VREFLECT_GEMV again (for tests that change them in-process).
void gemm_env_changed();

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
// dinp[M,K] += dout @ W; dweight[N,K] += dout^T @ inp; dbias[N] += column sums of dout. Any output may be null.
void gemm_linear_backward(float* dinp, float* dweight, float* dbias, const bf16* dout, const bf16* inp,
                          const bf16* w, int64_t M, int64_t N, int64_t K, Stream s = nullptr,
                          GemmImpl want = GemmImpl::Auto);

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
