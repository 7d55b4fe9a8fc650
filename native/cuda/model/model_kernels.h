// Small kernels only the model path needs (model_kernels.cu): the mixed-precision seams between the fp32
// residual stream and the bf16 GEMM / attention operands. Plain C++ header, device pointers, like
// cuda/kernels/cuda_kernels.h.
#pragma once
#include <cstdint>

#include "cuda/kernels/cuda_kernels.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

// RMSNorm of the fp32 residual stream with an fp32 weight, written as bf16: the normalised input of the
// q/k/v and gate/up GEMMs, rounded once (the CPU's round_to_bf16 after rmsnorm_forward). out [N, C].
void rmsnorm_to_bf16(bf16* out, const float* inp, const float* weight, int64_t N, int64_t C, float eps,
                     Stream s = nullptr);
// Elementwise storage conversion (round to nearest even / exact widening).
void convert(bf16* out, const float* inp, int64_t n, Stream s = nullptr);
void convert(float* out, const bf16* inp, int64_t n, Stream s = nullptr);

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
