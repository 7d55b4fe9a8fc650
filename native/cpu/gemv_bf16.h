// Decode-shaped bf16 GEMM (M <= gemv_bf16_max_rows()) with AVX-512-BF16 dot products (vdpbf16ps):
// out[m,n] = (acc ? out : 0) + sum_k bf16(inp[m,k]) * W[n,k] (+ bias[n]), fp32 accumulation.
// Memory bound: each thread streams a contiguous range of weight rows straight from the (mmapped) tensor.
#pragma once
#include <cstdint>

#include "cpu/packed_weight.h"

namespace vr::cpu {

bool gemv_bf16_available();  // CPU has avx512_bf16 (checked at run time)
int gemv_bf16_max_rows();    // largest M this path takes
const char* gemv_bf16_isa();
void gemv_bf16(float* out, const float* inp, const uint16_t* W, const float* bias, int64_t M, int64_t N, int64_t K,
               bool accumulate);
// The same product reading a packed weight (W.vnni64 must be set): each thread streams whole 64-column panels,
// every panel one contiguous run of 4 KiB blocks, so decode keeps its bandwidth roofline on the packed copy.
void gemv_bf16_packed(float* out, const float* inp, const PackedWeight& W, const float* bias, int64_t M,
                      bool accumulate);

}  // namespace vr::cpu
