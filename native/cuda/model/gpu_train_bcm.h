// The BCM head (BoxGuidedCompression, method.md §6) for training on the CUDA backend: the device twin of
// model/bcm.h BoxCompression over the tensors it registered ("<prefix>queries", "<prefix>cross_attn.*",
// "<prefix>output_norm.*"), forward and backward.
//
//   q = Q0 W_q^T + b_q (the learned queries, one copy per box);  k|v = R W_kv^T + b_kv (R: the box's visual rows)
//   O = cross_attention(q, k, v) over each box's own keys;  Z = LayerNorm(O W_o^T + b_o)
//
// Boxes have different sizes: the keys are laid out [nb, max_box, D] with a key padding mask (the cross_attention
// kernels skip padded keys and give their k/v rows no gradient), which computes the CPU's exact-length numbers.
// Precision as the decoder: bf16 GEMM and attention operands (queries, box rows, q, k|v, attention output, the
// incoming gradients), fp32 accumulation, LayerNorm and its statistics fp32, weight gradients fp32.
// Like the CPU twin, the backward gives no gradient to the visual rows (the vision tower is frozen).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/kernels/cuda_kernels.h"
#include "cuda/model/device_arena.h"
#include "cuda/model/gpu_train_params.h"

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
  int64_t max_box() const { return N_; }
  // dZ [nb, nq, D] (device); dattn (optional) the gradient w.r.t. attn. Accumulates every BCM gradient.
  void backward(const float* dZ, const float* dattn = nullptr);

 private:
  GpuTrainParams& p_;
  const DeviceParam *queries_, *in_w_, *in_b_, *out_w_, *out_b_, *ln_w_, *ln_b_;
  int64_t D_;
  int nq_, heads_;
  Stream s_;

  // State of the last forward.
  int64_t nb_ = 0, N_ = 0;
  CrossAttnArgs args_;
  DeviceArena arena_;
  bf16 *q0_16_ = nullptr, *rows16_ = nullptr, *q16_ = nullptr, *kv16_ = nullptr, *o16_ = nullptr;
  uint8_t* key_pad_ = nullptr;
  float *lse_ = nullptr, *pre_ = nullptr, *mean_ = nullptr, *rstd_ = nullptr;
};

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
