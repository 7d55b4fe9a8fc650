// The Qwen2 decoder of Qwen2.5-VL for training (method.md §7): fp32 master weights in a ParamStore under the
// checkpoint's names, a forward over packed variable-length batches (cu_seqlens, causal attention inside each
// sample, per-sample M-RoPE positions from the caller), and the backward pass.
//
// Memory: activation checkpointing per layer is a choice (set_checkpointing). On, the forward keeps only each
// layer's input [T, D] (plus the final residual); the backward recomputes one layer's attention half at a time
// and its MLP in row chunks, so the working set is one layer's attention activations plus a chunk of the MLP,
// never the [T, intermediate] tensors of every layer. Cost: one extra forward per step (minus down_proj). Off,
// the forward also keeps every layer's attention activations and gate/up outputs (~(5 D + 2 Dkv + 2 F) floats
// per token and layer) and the backward recomputes nothing. Both give bit-identical results: the recomputation
// runs the same kernels on the same shapes.
//
// Every buffer lives in the object and keeps its capacity from step to step, so a step touches no fresh pages
// (the kernel's zeroing of freshly mapped pages was ~12% of a step).
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/weights.h"
#include "ops/attention.h"
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
  // Activation checkpointing (recompute each layer in the backward) on or off; takes effect at the next forward.
  void set_checkpointing(bool on) { checkpointing_ = on; }
  bool checkpointing() const { return checkpointing_; }

 private:
  AttnParams attn_params() const;
  struct Layer {
    Param *in_norm, *post_norm, *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *gate, *up, *down;
  };
  // One layer's activations: the attention half, and (checkpointing off) the MLP's gate/up outputs [T, F].
  struct LayerActs {
    std::vector<float> h1, rstd1, q, k, v, att, lse, x2, h2, rstd2, g, u;
  };
  // Scratch of the backward, reused by every layer and step.
  struct Scratch {
    std::vector<float> g, u, act, dact, dg, du, dh2, dx2, datt, dq, dk, dv, dh1, dy, dprev;
  };
  void attention_half(const Layer& l, const float* x, LayerActs& a) const;
  // out += down(silu(gate(h2)) * up(h2)); keeps gate/up in a.g / a.u when keep is set.
  void mlp_forward(const Layer& l, LayerActs& a, float* out, bool keep);
  void layer_backward(const Layer& l, const float* x, LayerActs& a, bool saved, const float* dy, float* dx);

  TextConfig tc_;
  ParamStore& ps_;
  Param* embed_ = nullptr;
  Param* final_norm_ = nullptr;
  Param* lm_head_ = nullptr;  // null when tied
  std::vector<Layer> layers_;
  int64_t mlp_chunk_ = 1024;
  bool checkpointing_ = true;

  // State of the last forward.
  int64_t T_ = 0;
  std::vector<int32_t> cu_;
  std::vector<float> acts_;        // [(layers + 1) * T * D]: layer inputs, then the final residual
  std::vector<float> final_rstd_;  // [T]
  std::vector<float> cos_, sin_;   // M-RoPE tables [T, head_dim]
  bool saved_ = false;             // the last forward kept every layer's activations (checkpointing off)
  std::vector<LayerActs> layer_acts_;  // [layers] when saved_, else [1]: the layer being recomputed
  Scratch s_;
};

}  // namespace vr
