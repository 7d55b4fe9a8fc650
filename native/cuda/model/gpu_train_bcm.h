// The BCM head (BoxGuidedCompression, method.md §6) for training on the CUDA backend: the device twin of
// model/bcm.h BoxCompression over the tensors it registered ("<prefix>queries", "<prefix>cross_attn.*",
// "<prefix>output_norm.*"), forward and backward.
//
//   q = Q0 W_q^T + b_q (the learned queries, one copy per box);  k|v = R W_kv^T + b_kv (R: the box's visual rows)
//   O = cross_attention(q, k, v) over each box's own keys;  Z = LayerNorm(O W_o^T + b_o)
//
// The block itself (padded keys with a mask, precision, no gradient to the visual rows) is GpuCrossAttnBlock
// (gpu_train_resampler.h), shared with the DAC; this class supplies its queries (the learned ones, one copy per
// box) and its key rows (each box's own region), and sums the queries' gradient over the boxes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/model/gpu_train_params.h"
#include "cuda/model/gpu_train_resampler.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

class GpuBoxCompression {
 public:
  // heads = resampler_heads(D), as the CPU.
  GpuBoxCompression(GpuTrainParams& params, const std::string& prefix, int64_t D, int num_queries,
                    Stream s = nullptr);
  int num_queries() const { return nq_; }
  // Box b's region is rows idx[cu[b] .. cu[b+1]) (HOST arrays; never empty, each in [0, nrows)) of the visual
  // rows V [nrows, D] fp32 (device). Z [nb, nq, D] fp32 (device). attn (optional, device) [nb, nq, max_box()]:
  // the head-averaged attention probabilities (0 on a box's padding columns). Keeps what backward needs.
  void forward(float* Z, const float* V, int64_t nrows, const int32_t* idx, const int32_t* cu, int64_t nb,
               float* attn = nullptr);
  int64_t max_box() const { return block_.keys(); }
  // dZ [nb, nq, D] (device); dattn (optional) the gradient w.r.t. attn. Accumulates every BCM gradient.
  void backward(const float* dZ, const float* dattn = nullptr);

 private:
  GpuCrossAttnBlock block_;
  const DeviceParam* queries_;
  int64_t D_;
  int nq_;
  Stream s_;
};

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
