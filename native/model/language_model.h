// The Qwen2 decoder of Qwen2.5-VL: embeddings, M-RoPE GQA attention with a KV cache, RMSNorm, SwiGLU, the final
// norm and lm_head (model.md §5-§6). Works on input *embeddings*, so the caller can scatter vision features
// and, during V-Reflection latent steps, feed the previous post-norm hidden state instead of a token embedding.
#pragma once
#include <cstdint>
#include <vector>

#include "core/progress.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/swiglu_mlp.h"
#include "model/weights.h"
#include "ops/linear.h"

namespace vr {

// Attention capture for visualisation: for the LAST query row of a forward, the softmax probabilities over the
// keys [key_begin, key_end), averaged over all heads and all layers, are added to `probs`.
struct AttnProbe {
  int64_t key_begin = 0, key_end = 0;
  std::vector<float> probs;
};

// Activation buffers of a forward pass, kept by the caller from call to call (see VisionWorkspace): only grow,
// every element written before it is read.
struct LLMWorkspace {
  std::vector<float> cos, sin, x, h, q, att, lse;
  MLPScratch mlp;
  std::vector<uint16_t> h16;
};

class LanguageModel {
 public:
  LanguageModel(const TextConfig& tc, WeightStore& ws, DType compute);
  const TextConfig& config() const { return tc_; }

  void embed(float* out, const int32_t* ids, int64_t T) const;
  // x [T, D] input embeddings at positions pos3 (planes t/h/w, plane_stride apart) appended after the cache;
  // writes the post-norm hidden states [T, D] and extends the cache by T.
  void forward(float* hidden, const float* x, int64_t T, const int64_t* pos3, int64_t plane_stride, KVCache& cache,
               AttnProbe* probe = nullptr, Progress* progress = nullptr, LLMWorkspace* work = nullptr) const;
  // logits [T, vocab] = hidden @ lm_head^T
  void logits(float* out, const float* hidden, int64_t T) const;
  KVCache new_cache() const { return KVCache(tc_.layers, tc_.kv_heads, tc_.head_dim); }

 private:
  struct Layer {
    const float* in_norm;
    const float* post_norm;
    Linear q, k, v, o, gate, up, down;
  };
  TextConfig tc_;
  const void* embed_table_ = nullptr;
  DType embed_dtype_ = DType::F32;
  std::vector<Layer> layers_;
  const float* final_norm_ = nullptr;
  Linear lm_head_;
};

}  // namespace vr
