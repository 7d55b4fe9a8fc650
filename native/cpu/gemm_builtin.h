// Built-in GEMM (no oneDNN): C[M,N] = (accumulate ? C : 0) + A[M,K] @ B[N,K]^T (+ bias[N]).
// B is fp32 or bf16 (bf16 rows are widened exactly to fp32 block by block). Portable code, multi-versioned
// for AVX-512 / AVX2; used when oneDNN is absent and for odd layouts in the backward pass.
#pragma once
#include <cstdint>

namespace vr::cpu {

void gemm_nt_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                 float* C, int64_t ldc, const float* bias, bool accumulate);
void gemm_nt_bf16(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const uint16_t* B, int64_t ldb,
                  float* C, int64_t ldc, const float* bias, bool accumulate);

}  // namespace vr::cpu
