// The Qwen2 decoder of Qwen2.5-VL for training (method.md §7): fp32 master weights in a ParamStore under the
// checkpoint's names, a forward over packed variable-length batches (cu_seqlens, causal attention inside each
// sample, per-sample M-RoPE positions from the caller), and the backward pass.
//
// Memory: activation checkpointing per layer. The forward keeps only each layer's input [T, D] (plus the final
// residual); the backward recomputes one layer's attention half at a time and its MLP in row chunks, so the
// working set is one layer's attention activations plus a chunk of the MLP, never the [T, intermediate] tensors
// of every layer. Cost: one extra forward per step.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/weights.h"
#include "train/param_store.h"

namespace vr {

class TrainLLM {
 public:
  // Registers the LLM tensors (model.embed_tokens.weight, model.layers.{i}.*, model.norm.weight, lm_head.weight
  // unless tied) in ps; all trainable (method.md §8.2).
  TrainLLM(const TextConfig& tc, ParamStore& ps);
  const TextConfig& config() const { return tc_; }
  // Copies the checkpoint's LLM tensors (any float dtype) into the master weights (after ps.allocate()).
  void load(const WeightStore& ws) const;

  // Token embeddings out [T, D] = table[ids].
  void embed(float* out, const int32_t* ids, int64_t T) const;
  // table gradient += dx rows (callers zero the rows of overwritten positions first).
  void embed_backward(const float* dx, const int32_t* ids, int64_t T) const;

  // x [T, D] input embeddings; pos3 [3, T] (planes t, h, w); segments cu[0..nseq] (cu[0] = 0, cu[nseq] = T).
  // Writes the post-final-norm hidden states [T, D] and keeps what backward needs.
  void forward(const float* x, int64_t T, const int32_t* pos3, const int32_t* cu, int nseq, float* hidden);
  // dhidden [T, D] (gradient w.r.t. the post-norm hidden states) -> dx [T, D] (gradient w.r.t. the input
  // embeddings, overwritten). Accumulates every LLM weight gradient. Uses the state of the last forward.
  void backward(const float* dhidden, float* dx);

  Linear lm_head() const;
  float* lm_head_grad() const;  // the embedding's gradient when tied
  // Rows per MLP pass (default 1024; tests lower it to cross chunk boundaries).
  void set_mlp_chunk_rows(int64_t n) { mlp_chunk_ = n > 0 ? n : 1; }

 private:
  struct Layer {
    Param *in_norm, *post_norm, *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *gate, *up, *down;
  };
  struct AttnActs;  // one layer's attention-half activations (llm_train.cc)
  void attention_half(const Layer& l, const float* x, AttnActs& a) const;
  void mlp_forward(const Layer& l, const float* h2, float* out) const;
  void layer_backward(const Layer& l, const float* x, const float* dy, float* dx) const;

  TextConfig tc_;
  ParamStore& ps_;
  Param* embed_ = nullptr;
  Param* final_norm_ = nullptr;
  Param* lm_head_ = nullptr;  // null when tied
  std::vector<Layer> layers_;
  int64_t mlp_chunk_ = 1024;

  // State of the last forward.
  int64_t T_ = 0;
  std::vector<int32_t> cu_;
  std::vector<float> acts_;        // [(layers + 1) * T * D]: layer inputs, then the final residual
  std::vector<float> final_rstd_;  // [T]
  std::vector<float> cos_, sin_;   // M-RoPE tables [T, head_dim]
};

}  // namespace vr
