// DAC (DynamicAutoregressiveCompression, method.md §6.2 / §9.3): the stage-2 student. The LLM's post-norm
// hidden states at a box's 8 `<|lvr|>` slots are the queries of a cross-attention block (no learned queries)
// over ALL visual tokens of the box's sample; same block and LayerNorm as BCM, under "student_resampler.".
// Boxes of one sample share that sample's keys, so their key/value projections are computed once.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/bcm.h"
#include "train/param_store.h"

namespace vr {

class DynamicCompression {
 public:
  DynamicCompression(ParamStore& ps, const std::string& prefix, int64_t D, bool trainable);
  const ResamplerWeights& weights() const { return w_; }
  // Hq [nb*nq, D]: queries of box b at rows [b*nq, (b+1)*nq). Box b attends over rows
  // [cu_sample[box_sample[b]], cu_sample[box_sample[b]+1]) of V [*, D] (V must stay valid until backward).
  // Z [nb*nq, D]; the head-averaged attention over the sample's tokens lands in cache.attn / cache.attn_off.
  void forward(const float* Hq, int64_t nb, int nq, const float* V, const int32_t* cu_sample,
               const int32_t* box_sample, float* Z, CrossAttnCache& cache) const;
  // dattn (optional): gradient w.r.t. cache.attn. dHq [nb*nq, D] += gradient w.r.t. the queries.
  void backward(const CrossAttnCache& cache, const float* dZ, const float* dattn, float* dHq) const;

 private:
  ResamplerWeights w_;
  CrossAttention ca_;
};

}  // namespace vr
