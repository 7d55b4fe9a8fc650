// oneDNN matmul behind a small interface (compiled to stubs without oneDNN; check onednn_available()).
//   C[M,N] = (accumulate ? C : 0) + A[M,K] @ B[K,N] (+ bias[N])
// A and B are given by element strides, so transposed views (a Linear weight [N,K] read as [K,N] with
// strides {1,K}, i.e. oneDNN's "ba") need no copy. A/B are both F32 or both BF16 (uint16 bits);
// C is F32 unless c_bf16; bias is F32. Primitives are cached process-wide by shape, strides and types (weights
// pointers are not part of a primitive, so every layer of one shape shares one primitive).
// B may instead be a PackedWeight (cpu/packed_weight.h; bf16 only), read in oneDNN's own blocked layout.
#pragma once
#include <cstdint>
#include <string>

#include "cpu/packed_weight.h"

namespace vr::cpu {

struct MatmulArgs {
  int64_t M = 0, N = 0, K = 0;
  bool bf16 = false;                    // A and B are bf16 (uint16 bits) instead of fp32
  const void* A = nullptr;
  int64_t a_rs = 0, a_cs = 1;          // A[m,k] at A + m*a_rs + k*a_cs
  const void* B = nullptr;
  int64_t b_rs = 0, b_cs = 1;          // B[k,n] at B + k*b_rs + n*b_cs
  const PackedWeight* b_packed = nullptr;  // when set: B = this packed W^T (B, b_rs, b_cs unused)
  void* C = nullptr;                    // fp32, or bf16 bits when c_bf16
  int64_t ldc = 0;
  const float* bias = nullptr;
  bool accumulate = false;
  // Fused epilogues (applied after the bias, in fp32, before the store):
  bool c_bf16 = false;                  // C is bf16 (rounded, RNE) instead of fp32
  bool swish = false;                   // C = silu(A@B + bias)
  const uint16_t* mul16 = nullptr;      // C = (A@B + bias) * mul16[m*ldc + n] (bf16 [M, N], same strides as C)
};

bool onednn_available();
// Runs the matmul; returns the implementation name oneDNN picked (e.g. "brg:avx512_core_bf16").
const char* onednn_matmul(const MatmulArgs& a);
// The implementation oneDNN picks for these arguments (creates and caches the primitive, runs nothing).
const char* onednn_matmul_impl(const MatmulArgs& a);
// Name oneDNN picks for a representative Linear-shaped problem (cached).
std::string onednn_impl_name(bool bf16);

}  // namespace vr::cpu
