// Small kernels only the training path needs (gpu_train_kernels.cu). Plain C++ header, device pointers, like
// cuda/kernels/cuda_kernels.h.
#pragma once
#include <cstdint>

#include "cuda/kernels/cuda_kernels.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

// Blocks of sum_squares_partials: a fixed count, so the grouping of the sums (and so the result) depends only on
// n and the values, never on the device (gradient clipping must not change with the GPU model).
constexpr int kSumSquaresBlocks = 256;
// partials[b] = sum of x[i]^2 over block b's contiguous range of [0, n), in fp64 (kSumSquaresBlocks entries);
// the caller adds them in order. Deterministic: a fixed tree per block, no atomics.
void sum_squares_partials(double* partials, const float* x, int64_t n, Stream s = nullptr);

// out[i] += sum over g < groups of in[g * n + i], the groups added in order (deterministic): the gradient of a
// tensor that was broadcast to `groups` copies (the BCM's learned queries, one copy per box).
void sum_groups_add(float* out, const float* in, int64_t groups, int64_t n, Stream s = nullptr);

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
