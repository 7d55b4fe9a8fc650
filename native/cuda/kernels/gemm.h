// Our own GEMM kernel (gemm.cu): bf16 inputs, fp32 accumulation, fp32 or bf16 output. Plain C++ header, device
// pointers. The dispatcher that prefers cuBLASLt (loaded at run time) lives in native/cuda/gemm/gemm.h; this is
// the fallback it uses when cuBLASLt is absent, and the reference the cuBLASLt path is tested beside.
//
// Row-major contract: C[m,n] = op(A)[m,k] @ op(B)[k,n] (+ bias[n]) (+ C when accumulate).
//   A is stored [m,k] (row stride lda >= k), or [k,m] (lda >= m) when trans_a;
//   B is stored [k,n] (ldb >= n), or [n,k] (ldb >= k) when trans_b.
// The three layouts of a Linear (ops/linear.h, W [N,K] as in safetensors) are built by the linear_*_args helpers.
#pragma once
#include <cstdint>

#include "cuda/kernels/cuda_kernels.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

struct GemmArgs {
  int64_t m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  int64_t lda = 0, ldb = 0, ldc = 0;  // row strides in elements; 0 = dense (k or m, n or k, n)
  const float* bias = nullptr;        // [n] fp32, added to every row of C; may be null
  bool accumulate = false;            // C += op(A) op(B) (beta = 1) instead of C = ...
};

// out[M,N] = inp[M,K] @ W[N,K]^T (+ bias) (+ out): A = inp, B = W with trans_b.
GemmArgs linear_forward_args(int64_t M, int64_t N, int64_t K, const float* bias = nullptr, bool accumulate = false);
// dinp[M,K] += dout[M,N] @ W[N,K]: A = dout, B = W.
GemmArgs linear_backward_input_args(int64_t M, int64_t N, int64_t K);
// dweight[N,K] += dout[M,N]^T @ inp[M,K]: A = dout with trans_a, B = inp.
GemmArgs linear_backward_weight_args(int64_t M, int64_t N, int64_t K);

// g with its row strides resolved (0 -> dense) after the checks every GEMM implementation makes: sizes >= 0 and
// each stride at least its row (vr::Error, one line). Pointers are the caller's to check.
GemmArgs checked_gemm_args(const GemmArgs& g);

// Which code path of our kernel runs. Auto: tensor cores (mma.sync m16n8k16 bf16, sm_80+) on a GPU that has
// them, the scalar fp32 tiled path otherwise and on the CPU emulator. The emulator runs TensorCore only when
// asked for, with the mma instruction modelled in C++ (for tests).
enum class GemmKernelPath { Auto, Scalar, TensorCore };

// Checks the arguments (vr::Error with a one-line message), then launches on stream s.
void gemm_kernel(float* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s = nullptr,
                 GemmKernelPath path = GemmKernelPath::Auto);
void gemm_kernel(bf16* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s = nullptr,
                 GemmKernelPath path = GemmKernelPath::Auto);

// The path Auto resolves to on the current device: Scalar or TensorCore. Name: "scalar" / "tensor-core".
GemmKernelPath gemm_kernel_resolve(GemmKernelPath path = GemmKernelPath::Auto);
const char* gemm_kernel_path_name(GemmKernelPath path);

// The skinny linear forward of gemv.cu (decode / latent steps): C[m,n] = A[m,k] @ B[n,k]^T (+ bias) (+ C) for
// 1 <= m <= kGemvMaxRows, streaming B once. Returns false, launching nothing, when the case is not one it takes
// (trans_a, !trans_b, m out of range, k or a row stride of A / B not a multiple of 8, A or B not 16-byte
// aligned): the caller then runs a GEMM. vr::Error on a null pointer.
constexpr int64_t kGemvMaxRows = 8;
bool gemv_linear(float* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s = nullptr);
bool gemv_linear(bf16* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s = nullptr);
// The SwiGLU MLP's first half for 1 <= M <= kGemvMaxRows rows in one pass over both weights: out[M, F] =
// silu(g) * u, g = bf16(A Wg^T), u = bf16(A Wu^T) (A [M, K], Wg / Wu [F, K], all dense) - bit for bit what
// gemv_linear into bf16 twice and swiglu_forward give. False, launching nothing, when it does not take the case
// (as gemv_linear); vr::Error on a null pointer.
bool gemv_swiglu(bf16* out, const bf16* A, const bf16* Wg, const bf16* Wu, int64_t M, int64_t F, int64_t K,
                 Stream s = nullptr);

// dbias[n] += sum over the M rows of dout[m, n] (fp32 sums; column partial sums meet in atomicAdd, so the last
// bits can differ run to run). The bias gradient of a Linear.
void bias_grad(float* dbias, const float* dout, int64_t M, int64_t N, Stream s = nullptr);
void bias_grad(float* dbias, const bf16* dout, int64_t M, int64_t N, Stream s = nullptr);

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
