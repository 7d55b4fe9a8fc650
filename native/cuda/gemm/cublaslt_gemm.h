// GEMMs on cuBLASLt (loaded at run time, cublaslt_loader.h) with the contract of our kernel (kernels/gemm.h):
// bf16 A and B, fp32 compute (CUBLAS_COMPUTE_32F), fp32 or bf16 C, optional fp32 bias epilogue, beta = 1 for
// accumulate. Row-major operands are handed to the column-major library as C^T = op(B)^T op(A)^T, so no data
// moves and the bias vector (length n) is per row of the column-major D, as cuBLASLt's BIAS epilogue wants.
// One handle per device and one 32 MiB workspace per (device, stream); descriptors and the heuristic's algorithm are cached per shape
// (the 512 most recently used).
#pragma once
#include <string>

#include "cuda/kernels/gemm.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

// True when the GEMM was enqueued on s. False, with *why set, when cuBLASLt is not loaded, cannot start (no
// GPU), or has no algorithm for this case: the caller then runs our kernel. A failed launch throws vr::Error.
// Always false under the CPU emulator.
bool cublaslt_gemm(float* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s, std::string* why);
bool cublaslt_gemm(bf16* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s, std::string* why);

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
