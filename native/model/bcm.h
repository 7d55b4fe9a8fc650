// V-Reflection's resampler heads (method.md §6): a multi-head cross-attention block with biases
// (torch nn.MultiheadAttention, batch_first, no dropout) followed by an affine LayerNorm (eps 1e-6), forward and
// backward side by side. BCM (this file) attends with 8 learned queries over a box's visual tokens; DAC
// (dac.h) reuses the block with LLM hidden states as queries over all of a sample's visual tokens.
//
// Padding: upstream pads every key set to the longest and masks the padding (key_padding_mask). Here each query
// group attends over its own key set of exact length, which computes the same numbers without the padding.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "train/param_store.h"

namespace vr {

// heads = max(1, min(8, D / 64)): 8 heads of 448 at D = 3584 (issue #5).
int resampler_heads(int64_t D);

// The six tensors of one cross-attention block: cross_attn.{in_proj_weight [3D, D] (rows W_q; W_k; W_v),
// in_proj_bias [3D], out_proj.weight [D, D], out_proj.bias [D]} and output_norm.{weight, bias} [D].
struct ResamplerWeights {
  Param *in_w = nullptr, *in_b = nullptr, *out_w = nullptr, *out_b = nullptr, *ln_w = nullptr, *ln_b = nullptr;
};
ResamplerWeights add_resampler_params(ParamStore& ps, const std::string& prefix, int64_t D, bool trainable);

// One key set: n rows of D floats (keys and values are the same input rows, as both heads use them).
struct KeySet {
  const float* rows = nullptr;
  int64_t n = 0;
};

// nb query groups of nq rows each; group b attends over key set sets[set_of[b]]. The key rows must stay valid
// until backward() has run.
struct CrossAttnInput {
  int64_t nb = 0;
  int nq = 0;
  const float* queries = nullptr;  // [nb*nq, D]
  std::vector<KeySet> sets;
  std::vector<int32_t> set_of;     // [nb]
};

// Everything backward needs (and the head-averaged attention, when asked for).
struct CrossAttnCache {
  CrossAttnInput in;
  std::vector<float> q_in;               // [nb*nq, D] copy of the query inputs
  std::vector<float> q, k, v;            // projected queries [nb*nq, D]; keys/values of every set, set-major
  std::vector<int64_t> key_off;          // [nsets+1] row offsets of each set in k / v
  std::vector<float> probs;              // per group b, head h: [nq, N] at prob_off[b] + h*nq*N
  std::vector<int64_t> prob_off;         // [nb+1]
  std::vector<float> heads_out;          // [nb*nq, D] concatenated head outputs (out_proj input)
  std::vector<float> pre_norm;           // [nb*nq, D] out_proj output (LayerNorm input)
  std::vector<float> ln_mean, ln_rstd;   // [nb*nq]
  std::vector<float> attn;               // head-averaged attention: group b at attn_off[b], [nq, N]
  std::vector<int64_t> attn_off;         // [nb+1]
};

class CrossAttention {
 public:
  CrossAttention(const ParamStore& ps, const ResamplerWeights& w, int64_t D, int heads);
  int heads() const { return heads_; }
  int64_t dim() const { return D_; }
  // Z [nb*nq, D]. cache is filled for backward; want_attn also fills cache.attn.
  void forward(const CrossAttnInput& in, float* Z, CrossAttnCache& cache, bool want_attn) const;
  // dZ [nb*nq, D]; dattn (optional) is the gradient w.r.t. cache.attn (same layout). Accumulates the weight
  // gradients and, when dq_in is given, dq_in[nb*nq, D] += gradient w.r.t. the query inputs.
  void backward(const CrossAttnCache& cache, const float* dZ, const float* dattn, float* dq_in) const;

 private:
  const ParamStore& ps_;
  ResamplerWeights w_;
  int64_t D_;
  int heads_;
};

// BCM (BoxGuidedCompression): queries [1, 8, D] plus a cross-attention block, under "<prefix>queries" and
// "<prefix>cross_attn.*" / "<prefix>output_norm.*" (prefix "box_feature_resampler.").
struct BcmCache {
  std::vector<float> regions;  // gathered box rows (the key sets point here)
  CrossAttnCache ca;
};

class BoxCompression {
 public:
  BoxCompression(ParamStore& ps, const std::string& prefix, int64_t D, int num_queries, bool trainable);
  const ResamplerWeights& weights() const { return w_; }
  Param* queries() const { return queries_; }
  int num_queries() const { return nq_; }
  // Box b's region is rows idx[cu[b] .. cu[b+1]) of V [*, D] (never empty). Z [nb, nq, D].
  void forward(const float* V, const int32_t* idx, const int32_t* cu, int64_t nb, float* Z, BcmCache& cache,
               bool want_attn) const;
  // Accumulates every BCM gradient (queries included) from dZ [nb, nq, D].
  void backward(const BcmCache& cache, const float* dZ) const;

 private:
  const ParamStore& ps_;
  ResamplerWeights w_;
  Param* queries_;
  int nq_;
  CrossAttention ca_;
};

}  // namespace vr
