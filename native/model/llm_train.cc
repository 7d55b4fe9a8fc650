// Per layer (model.md §5, llm.c notation):
//   h1 = rmsnorm(x) ; q,k,v = h1 W^T + b ; rope(q), rope(k) ; att = attention(q, k, v) ; x2 = x + att Wo^T
//   h2 = rmsnorm(x2) ; y = x2 + down(silu(gate(h2)) * up(h2))
// Backward of y w.r.t. x, in reverse: the MLP (chunked over rows, recomputing gate/up), the post-attention norm,
// o_proj, flash attention backward (from the saved lse), inverse RoPE, the q/k/v projections, the input norm.
#include "model/llm_train.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/grow.h"
#include "model/rope_tables.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/embedding.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "train/step_profile.h"

namespace vr {

namespace {

// The first gradient written into p since it was zeroed overwrites instead of adding (GradOverwrite): true once.
bool first_write(Param* p) {
  const bool z = p->grad_zero;
  p->grad_zero = false;
  return z;
}

// A weight and its bias are written together: overwrite only when both are known zero (both marks cleared).
bool first_write(Param* w, Param* b) {
  const bool zw = first_write(w), zb = first_write(b);
  return zw && zb;
}

}  // namespace

// Causal GQA attention over the packed samples (cu_), q/att rows [T, Hq*hd], k/v rows [T, Hkv*hd].
AttnParams TrainLLM::attn_params() const {
  const int hd = tc_.head_dim;
  AttnParams ap;
  ap.Hq = tc_.heads;
  ap.Hkv = tc_.kv_heads;
  ap.D = hd;
  ap.scale = 1.0f / std::sqrt(float(hd));
  ap.causal = true;
  ap.nseq = int(cu_.size()) - 1;
  ap.cu_q = ap.cu_k = cu_.data();
  ap.q_stride = ap.o_stride = int64_t(tc_.heads) * hd;
  ap.k_stride = ap.v_stride = int64_t(tc_.kv_heads) * hd;
  return ap;
}

TrainLLM::TrainLLM(const TextConfig& tc, ParamStore& ps) : tc_(tc), ps_(ps) {
  const int64_t D = tc.hidden, F = tc.intermediate, hd = tc.head_dim;
  const int64_t Dq = int64_t(tc.heads) * hd, Dkv = int64_t(tc.kv_heads) * hd;
  embed_ = ps.add("model.embed_tokens.weight", {tc.vocab, D}, true, tc.tie_embeddings);
  for (int i = 0; i < tc.layers; i++) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    Layer l;
    l.in_norm = ps.add(p + "input_layernorm.weight", {D}, true, false);
    l.q_w = ps.add(p + "self_attn.q_proj.weight", {Dq, D}, true, true);
    l.q_b = ps.add(p + "self_attn.q_proj.bias", {Dq}, true, false);
    l.k_w = ps.add(p + "self_attn.k_proj.weight", {Dkv, D}, true, true);
    l.k_b = ps.add(p + "self_attn.k_proj.bias", {Dkv}, true, false);
    l.v_w = ps.add(p + "self_attn.v_proj.weight", {Dkv, D}, true, true);
    l.v_b = ps.add(p + "self_attn.v_proj.bias", {Dkv}, true, false);
    l.o_w = ps.add(p + "self_attn.o_proj.weight", {D, Dq}, true, true);
    l.post_norm = ps.add(p + "post_attention_layernorm.weight", {D}, true, false);
    l.gate = ps.add(p + "mlp.gate_proj.weight", {F, D}, true, true);
    l.up = ps.add(p + "mlp.up_proj.weight", {F, D}, true, true);
    l.down = ps.add(p + "mlp.down_proj.weight", {D, F}, true, true);
    layers_.push_back(l);
  }
  final_norm_ = ps.add("model.norm.weight", {D}, true, false);
  if (!tc.tie_embeddings) lm_head_ = ps.add("lm_head.weight", {tc.vocab, D}, true, true);
}

void TrainLLM::load(const WeightStore& ws) const {
  auto copy = [&](const Param* p) {
    const TensorView& t = ws.get(p->name, p->shape);
    convert_to_f32(p->w, t.data, t.dtype, size_t(p->numel));
  };
  copy(embed_);
  for (const Layer& l : layers_)
    for (const Param* p : {l.in_norm, l.post_norm, l.q_w, l.q_b, l.k_w, l.k_b, l.v_w, l.v_b, l.o_w, l.gate, l.up,
                           l.down})
      copy(p);
  copy(final_norm_);
  if (lm_head_) copy(lm_head_);
}

void TrainLLM::embed(float* out, const int32_t* ids, int64_t T) const {
  embedding_forward(out, ids, T, embed_->w, DType::F32, tc_.vocab, tc_.hidden);
}

void TrainLLM::embed_backward(const float* dx, const int32_t* ids, int64_t T) const {
  embedding_backward(embed_->g, dx, ids, T, tc_.vocab, tc_.hidden);
}

Linear TrainLLM::lm_head() const { return ps_.linear(lm_head_ ? *lm_head_ : *embed_, nullptr); }
float* TrainLLM::lm_head_grad() const { return lm_head_ ? lm_head_->g : embed_->g; }

void TrainLLM::attention_half(const Layer& l, const float* x, LayerActs& a) const {
  const int64_t T = T_, D = tc_.hidden, hd = tc_.head_dim;
  const int Hq = tc_.heads, Hkv = tc_.kv_heads;
  const int64_t Dq = Hq * hd, Dkv = Hkv * hd;
  grow(a.h1, T * D);
  grow(a.rstd1, T);
  grow(a.q, T * Dq);
  grow(a.k, T * Dkv);
  grow(a.v, T * Dkv);
  grow(a.att, T * Dq);
  grow(a.lse, Hq * T);
  std::memcpy(grow(a.x2, T * D), x, size_t(T * D) * sizeof(float));
  grow(a.h2, T * D);
  grow(a.rstd2, T);
  rmsnorm_forward(a.h1.data(), a.rstd1.data(), x, l.in_norm->w, T, D, tc_.eps);
  linear_forward(a.q.data(), a.h1.data(), ps_.linear(*l.q_w, l.q_b), T);
  linear_forward(a.k.data(), a.h1.data(), ps_.linear(*l.k_w, l.k_b), T);
  linear_forward(a.v.data(), a.h1.data(), ps_.linear(*l.v_w, l.v_b), T);
  rope_forward(a.q.data(), cos_.data(), sin_.data(), T, Hq, int(hd), Dq);
  rope_forward(a.k.data(), cos_.data(), sin_.data(), T, Hkv, int(hd), Dkv);
  const AttnParams ap = attn_params();
  attention_forward(a.att.data(), a.lse.data(), a.q.data(), a.k.data(), a.v.data(), ap);
  linear_forward(a.x2.data(), a.att.data(), ps_.linear(*l.o_w, nullptr), T, /*accumulate=*/true);
  rmsnorm_forward(a.h2.data(), a.rstd2.data(), a.x2.data(), l.post_norm->w, T, D, tc_.eps);
}

// out += down(silu(gate(h2)) * up(h2)), row chunk by row chunk (out already holds x2). With keep, gate and up
// land in a.g / a.u [T, F] for the backward; otherwise in chunk scratch.
void TrainLLM::mlp_forward(const Layer& l, LayerActs& a, float* out, bool keep) {
  const int64_t T = T_, D = tc_.hidden, F = tc_.intermediate;
  const int64_t chunk = std::min(T, mlp_chunk_);
  float* g = keep ? grow(a.g, T * F) : grow(s_.g, chunk * F);
  float* u = keep ? grow(a.u, T * F) : grow(s_.u, chunk * F);
  float* act = grow(s_.act, chunk * F);
  const Linear Lg = ps_.linear(*l.gate, nullptr), Lu = ps_.linear(*l.up, nullptr), Ld = ps_.linear(*l.down, nullptr);
  for (int64_t r0 = 0; r0 < T; r0 += chunk) {
    const int64_t m = std::min(chunk, T - r0);
    float* gc = keep ? g + r0 * F : g;
    float* uc = keep ? u + r0 * F : u;
    linear_forward(gc, &a.h2[size_t(r0 * D)], Lg, m);
    linear_forward(uc, &a.h2[size_t(r0 * D)], Lu, m);
    swiglu_forward(act, gc, uc, m * F);
    linear_forward(out + r0 * D, act, Ld, m, /*accumulate=*/true);
  }
}

void TrainLLM::forward(const float* x, int64_t T, const int32_t* pos3, const int32_t* cu, int nseq, float* hidden) {
  const int64_t D = tc_.hidden;
  VR_CHECK(T > 0, "LLM forward: no tokens");
  VR_CHECK(nseq > 0 && cu[0] == 0 && cu[nseq] == T, "LLM forward: cu_seqlens must run from 0 to T=", T);
  for (int s = 0; s < nseq; s++) VR_CHECK(cu[s + 1] > cu[s], "LLM forward: sample ", s, " is empty");
  T_ = T;
  cu_.assign(cu, cu + nseq + 1);
  std::vector<int64_t> pos(size_t(3 * T));
  for (int64_t i = 0; i < 3 * T; i++) pos[size_t(i)] = pos3[i];
  mrope_tables(tc_, pos.data(), T, T, cos_, sin_);

  const size_t TD = size_t(T * D);
  acts_.resize(TD * size_t(tc_.layers + 1));
  std::memcpy(acts_.data(), x, TD * sizeof(float));
  saved_ = !checkpointing_;
  layer_acts_.resize(saved_ ? layers_.size() : 1);
  for (size_t li = 0; li < layers_.size(); li++) {
    LayerActs& a = layer_acts_[saved_ ? li : 0];
    attention_half(layers_[li], &acts_[li * TD], a);
    float* y = &acts_[(li + 1) * TD];
    std::memcpy(y, a.x2.data(), TD * sizeof(float));
    mlp_forward(layers_[li], a, y, saved_);
  }
  final_rstd_.resize(size_t(T));
  rmsnorm_forward(hidden, final_rstd_.data(), &acts_[layers_.size() * TD], final_norm_->w, T, D, tc_.eps);
}

// saved: a holds this layer's activations from the forward (checkpointing off); otherwise they are recomputed
// into a from the layer input x.
void TrainLLM::layer_backward(const Layer& l, const float* x, LayerActs& a, bool saved, const float* dy, float* dx) {
  const int64_t T = T_, D = tc_.hidden, F = tc_.intermediate, hd = tc_.head_dim;
  const int Hq = tc_.heads, Hkv = tc_.kv_heads;
  const int64_t Dq = Hq * hd, Dkv = Hkv * hd;
  if (!saved) {
    PhaseTimer pt("  bwd: recompute attn half");
    attention_half(l, x, a);
  }

  // MLP and post-attention norm, chunk by chunk: dx2 = dy + rmsnorm_backward(dh2).
  float* dx2 = grow(s_.dx2, T * D);
  std::memcpy(dx2, dy, size_t(T * D) * sizeof(float));
  {
    PhaseTimer pt("  bwd: mlp");
    const int64_t chunk = std::min(T, mlp_chunk_);
    float* g = saved ? a.g.data() : grow(s_.g, chunk * F);
    float* u = saved ? a.u.data() : grow(s_.u, chunk * F);
    float* act = grow(s_.act, chunk * F);
    float* dact = grow(s_.dact, chunk * F);
    float* dg = grow(s_.dg, chunk * F);
    float* du = grow(s_.du, chunk * F);
    float* dh2 = grow(s_.dh2, chunk * D);
    const Linear Lg = ps_.linear(*l.gate, nullptr), Lu = ps_.linear(*l.up, nullptr),
                 Ld = ps_.linear(*l.down, nullptr);
    for (int64_t r0 = 0; r0 < T; r0 += chunk) {
      const int64_t m = std::min(chunk, T - r0);
      const float* h2 = &a.h2[size_t(r0 * D)];
      float* gc = saved ? g + r0 * F : g;
      float* uc = saved ? u + r0 * F : u;
      if (!saved) {
        linear_forward(gc, h2, Lg, m);
        linear_forward(uc, h2, Lu, m);
      }
      swiglu_forward(act, gc, uc, m * F);
      linear_backward(dact, l.down->g, nullptr, dy + r0 * D, act, Ld, m, {true, first_write(l.down)});
      swiglu_backward(dg, du, dact, gc, uc, m * F);
      linear_backward(dh2, l.gate->g, nullptr, dg, h2, Lg, m, {true, first_write(l.gate)});
      linear_backward(dh2, l.up->g, nullptr, du, h2, Lu, m, {false, first_write(l.up)});
      rmsnorm_backward(dx2 + r0 * D, l.post_norm->g, dh2, &a.x2[size_t(r0 * D)], l.post_norm->w,
                       &a.rstd2[size_t(r0)], m, D);
    }
  }

  // o_proj, attention, RoPE, q/k/v projections, input norm.
  float* datt = grow(s_.datt, T * Dq);
  {
    PhaseTimer pt("  bwd: o_proj");
    linear_backward(datt, l.o_w->g, nullptr, dx2, a.att.data(), ps_.linear(*l.o_w, nullptr), T,
                    {true, first_write(l.o_w)});
  }
  float* dq = grow(s_.dq, T * Dq);
  float* dk = grow(s_.dk, T * Dkv);
  float* dv = grow(s_.dv, T * Dkv);
  std::fill(dq, dq + T * Dq, 0.f);
  std::fill(dk, dk + T * Dkv, 0.f);
  std::fill(dv, dv + T * Dkv, 0.f);
  const AttnParams ap = attn_params();
  {
    PhaseTimer pt("  bwd: attention");
    attention_backward(dq, dk, dv, datt, a.att.data(), a.lse.data(), a.q.data(), a.k.data(), a.v.data(), ap);
  }
  PhaseTimer pt("  bwd: rope + qkv + norm");
  rope_backward(dq, cos_.data(), sin_.data(), T, Hq, int(hd), Dq);
  rope_backward(dk, cos_.data(), sin_.data(), T, Hkv, int(hd), Dkv);
  float* dh1 = grow(s_.dh1, T * D);
  linear_backward(dh1, l.q_w->g, l.q_b->g, dq, a.h1.data(), ps_.linear(*l.q_w, l.q_b), T,
                  {true, first_write(l.q_w, l.q_b)});
  linear_backward(dh1, l.k_w->g, l.k_b->g, dk, a.h1.data(), ps_.linear(*l.k_w, l.k_b), T,
                  {false, first_write(l.k_w, l.k_b)});
  linear_backward(dh1, l.v_w->g, l.v_b->g, dv, a.h1.data(), ps_.linear(*l.v_w, l.v_b), T,
                  {false, first_write(l.v_w, l.v_b)});
  std::memcpy(dx, dx2, size_t(T * D) * sizeof(float));
  rmsnorm_backward(dx, l.in_norm->g, dh1, x, l.in_norm->w, a.rstd1.data(), T, D);
}

void TrainLLM::backward(const float* dhidden, float* dx) {
  VR_CHECK(T_ > 0, "LLM backward: no forward pass to differentiate");
  VR_CHECK(ps_.storage().grads, "LLM backward: this parameter store has no host gradients (a GPU trainer's)");
  const int64_t T = T_, D = tc_.hidden;
  const size_t TD = size_t(T * D);
  float* dy = grow(s_.dy, int64_t(TD));
  grow(s_.dprev, int64_t(TD));
  std::fill(dy, dy + TD, 0.f);
  rmsnorm_backward(dy, final_norm_->g, dhidden, &acts_[layers_.size() * TD], final_norm_->w, final_rstd_.data(), T,
                   D);
  for (size_t li = layers_.size(); li-- > 0;) {
    layer_backward(layers_[li], &acts_[li * TD], layer_acts_[saved_ ? li : 0], saved_, s_.dy.data(),
                   s_.dprev.data());
    std::swap(s_.dy, s_.dprev);
  }
  std::memcpy(dx, s_.dy.data(), TD * sizeof(float));
}

}  // namespace vr
