// The DAC head (DynamicAutoregressiveCompression, method.md §6.2 / §9.3), the stage-2 student, for training on the
// CUDA backend: the device twin of model/dac.h DynamicCompression over the tensors it registered
// ("<prefix>cross_attn.*", "<prefix>output_norm.*"; no learned queries), forward and backward.
//
//   q = Hq W_q^T + b_q (Hq: the LLM's post-norm hidden states at a box's <|lvr|> slots, nq rows per box)
//   k|v = S W_kv^T + b_kv (S: ALL visual rows of the box's sample);  O = cross_attention(q, k, v)
//   Z = LayerNorm(O W_o^T + b_o)
//
// Samples have different numbers of visual tokens: each box's keys are its sample's rows laid out [nb, max_S, D]
// with a key padding mask, which computes the CPU's exact-length numbers (boxes of one sample each project the
// sample's rows; the CPU does it once per sample - same values). The head-averaged attention is [nb, nq, max_S],
// 0 on the padding columns: with a_off[b] = b * nq * max_S it is a valid KlArgs student map (the KL's terms and
// gradient vanish where the teacher puts no mass, i.e. on the padding). The block itself (precision, padding, no
// gradient to the visual rows) is GpuCrossAttnBlock (gpu_train_resampler.h), shared with the BCM; the backward
// gives the queries' gradient (dHq, fp32).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/model/gpu_train_params.h"
#include "cuda/model/gpu_train_resampler.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

class GpuDynamicCompression {
 public:
  // heads = resampler_heads(D), as the CPU.
  GpuDynamicCompression(GpuTrainParams& params, const std::string& prefix, int64_t D, Stream s = nullptr);
  // Hq [nb*nq, D] fp32 (device). Box b attends over rows [cu_sample[box_sample[b]], cu_sample[box_sample[b]+1])
  // of V [nrows, D] fp32 (device); cu_sample / box_sample are HOST arrays (the batch's cu_sample_visual /
  // box_sample). Z [nb*nq, D] fp32 (device). attn (optional, device) [nb, nq, max_keys()]. Keeps what backward
  // needs (Hq and V may change after the call).
  void forward(float* Z, const float* Hq, int64_t nb, int nq, const float* V, int64_t nrows, const int32_t* cu_sample,
               int64_t nsamples, const int32_t* box_sample, float* attn = nullptr);
  int64_t max_keys() const { return block_.keys(); }
  // dZ [nb*nq, D] (device); dattn (optional) the gradient w.r.t. attn. Accumulates every DAC weight gradient and
  // dHq [nb*nq, D] (device fp32) += the gradient w.r.t. the queries (dHq may be null).
  void backward(const float* dZ, const float* dattn, float* dHq);

 private:
  GpuCrossAttnBlock block_;
  int64_t D_;
  Stream s_;
};

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
