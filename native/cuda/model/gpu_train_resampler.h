// The cross-attention block the two latent heads share, for training on the CUDA backend (the BCM,
// gpu_train_bcm.h, and the DAC, gpu_train_dac.h, differ only in where their queries and key rows come from):
//
//   q = Qin W_q^T + b_q;  k|v = Rows W_kv^T + b_kv (one GEMM over in_proj rows [D, 3D));
//   O = cross_attention(q, k, v) per group of nq queries over its own keys;  Z = LayerNorm(O W_o^T + b_o)
//
// over "<prefix>cross_attn.{in_proj_weight,in_proj_bias,out_proj.weight,out_proj.bias}" and
// "<prefix>output_norm.{weight,bias}". Groups have different numbers of keys: they are laid out [L, N, D] with a
// key padding mask (the kernels skip padded keys and give their k/v rows no gradient), which computes the CPU's
// exact-length numbers. Precision: bf16 GEMM and attention operands, fp32 accumulation, LayerNorm and its
// statistics fp32, weight gradients fp32. No gradient to the key rows (the vision tower is frozen).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/kernels/cuda_kernels.h"
#include "cuda/model/device_arena.h"
#include "cuda/model/gpu_train_params.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

class GpuCrossAttnBlock {
 public:
  // heads = resampler_heads(D), as the CPU. `what` names the head in errors ("BCM", "DAC").
  GpuCrossAttnBlock(GpuTrainParams& params, const std::string& prefix, int64_t D, const char* what, Stream s);

  // Forward of L groups of nq queries; group g's keys are rows slots[g * N + j] of V [nrows, D] fp32 (device),
  // slots a HOST array [L * N], -1 = padding (N = the longest group). Returns the bf16 query-input buffer
  // [L * nq, D] (device, valid until the next forward) that `run` reads: fill it between the two calls.
  bf16* begin(int64_t L, int nq, int64_t N, const std::vector<int32_t>& slots);
  // Z [L * nq, D] fp32 (device); attn (optional, device) [L, nq, N]: the head-averaged probabilities, 0 on padding.
  void run(float* Z, const float* V, int64_t nrows, float* attn);
  // dZ [L * nq, D]; dattn (optional) the gradient w.r.t. attn. Accumulates the block's weight gradients and
  // dqin [L * nq, D] (device fp32) += the gradient w.r.t. the query input (dqin may be null).
  void backward(const float* dZ, const float* dattn, float* dqin);
  int64_t groups() const { return L_; }
  int64_t keys() const { return N_; }

 private:
  GpuTrainParams& p_;
  const DeviceParam *in_w_, *in_b_, *out_w_, *out_b_, *ln_w_, *ln_b_;
  int64_t D_;
  int heads_;
  const char* what_;
  Stream s_;

  // State of the last forward.
  int64_t L_ = 0, N_ = 0, R_ = 0;
  CrossAttnArgs args_;
  DeviceArena arena_;
  bf16 *qin16_ = nullptr, *rows16_ = nullptr, *q16_ = nullptr, *kv16_ = nullptr, *o16_ = nullptr;
  uint8_t* key_pad_ = nullptr;
  float *lse_ = nullptr, *pre_ = nullptr, *mean_ = nullptr, *rstd_ = nullptr, *rows32_ = nullptr;
  int32_t* slots_ = nullptr;
};

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
