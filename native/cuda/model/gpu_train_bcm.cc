// The BCM head: the learned queries (one bf16 copy per box) and each box's own rows as keys, through the shared
// cross-attention block (gpu_train_resampler.cc); backward sums the queries' gradient over the boxes in box order
// (the CPU's order).
#include "cuda/model/gpu_train_bcm.h"

#include <algorithm>

#include "core/error.h"
#include "cuda/model/cuda_runtime.h"
#include "cuda/model/gpu_train_kernels.h"
#include "cuda/model/model_kernels.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

GpuBoxCompression::GpuBoxCompression(GpuTrainParams& params, const std::string& prefix, int64_t D, int num_queries,
                                     Stream s)
    : block_(params, prefix, D, "BCM", s), D_(D), nq_(num_queries), s_(s) {
  queries_ = &params.get(prefix + "queries");
  VR_CHECK(queries_->host->numel == int64_t(nq_) * D, "cuda BCM: ", queries_->host->name, " is not [1, ", nq_,
           ", ", D, "]");
  VR_CHECK(queries_->w, "cuda BCM: ", queries_->host->name, " has no fp32 copy on the device");
}

void GpuBoxCompression::forward(float* Z, const float* V, int64_t nrows, const int32_t* idx, const int32_t* cu,
                                int64_t nb, float* attn) {
  const int64_t D = D_, nq = nq_;
  VR_CHECK(nb > 0 && cu[0] == 0, "cuda BCM: box index offsets must start at 0 (and at least one box)");
  int64_t N = 0;
  for (int64_t b = 0; b < nb; b++) {
    VR_CHECK(cu[b + 1] > cu[b], "cuda BCM: box ", b, " has no visual tokens");
    N = std::max<int64_t>(N, cu[b + 1] - cu[b]);
  }
  for (int64_t r = 0; r < cu[nb]; r++)
    VR_CHECK(idx[r] >= 0 && idx[r] < nrows, "cuda BCM: box token ", r, " indexes row ", idx[r], " of ", nrows);
  // Each box's rows, padded to the largest box (-1: a padding slot).
  std::vector<int32_t> slots(size_t(nb * N), -1);
  for (int64_t b = 0; b < nb; b++)
    for (int64_t j = 0; j < cu[b + 1] - cu[b]; j++) slots[size_t(b * N + j)] = idx[cu[b] + j];
  bf16* q0 = block_.begin(nb, nq_, N, slots);
  // The learned queries, one bf16 copy per box (the CPU projects each box's copy too).
  convert(q0, queries_->w, nq * D, s_);
  for (int64_t b = 1; b < nb; b++) copy_on_device(q0 + b * nq * D, q0, size_t(nq * D) * sizeof(bf16), "BCM queries", s_);
  block_.run(Z, V, nrows, attn);
}

void GpuBoxCompression::backward(const float* dZ, const float* dattn) {
  VR_CHECK(block_.groups() > 0, "cuda BCM backward: no forward pass to differentiate");
  VR_CHECK(queries_->g, "cuda BCM backward: ", queries_->host->name, " is frozen");
  const int64_t R = block_.groups() * nq_ * D_;
  DeviceArena scratch(DeviceArena::round_up(size_t(R) * sizeof(float)), "BCM queries' gradient");
  float* dq0 = scratch.take<float>(R);
  const cudaError_t e = cudaMemsetAsync(dq0, 0, size_t(R) * sizeof(float), s_);
  VR_CHECK(e == cudaSuccess, "cuda BCM: clearing a buffer failed: ", cudaGetErrorString(e));
  block_.backward(dZ, dattn, dq0);
  sum_groups_add(queries_->g, dq0, block_.groups(), nq_ * D_, s_);
  device_sync("BCM backward");  // the scratch arena is freed on return
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
