// Per layer (model.md §5), as model/llm_train.cc:
//   h1 = rmsnorm(x) ; q|k|v = h1 Wqkv^T + b ; rope(q), rope(k) ; att = attention(q, k, v) ; x2 = x + att Wo^T
//   h2 = rmsnorm(x2) ; y = x2 + down(silu(gate(h2)) * up(h2))
// Backward of y w.r.t. x, in reverse, after recomputing the layer from its saved input (checkpointing on) or from
// what the forward kept of it (off: only the SwiGLU product is recomputed): the MLP, the post-attention norm,
// o_proj, flash attention backward (the saved lse), inverse RoPE, the fused q|k|v projection, the input norm. Every GEMM backward is gemm_linear_backward: dinp (fp32, += onto zeros) and
// dweight (+= into the fp32 gradient), from a bf16 copy of the incoming gradient.
#include "cuda/model/gpu_train_llm.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "cuda/gemm/gemm.h"
#include "cuda/model/cuda_runtime.h"
#include "cuda/model/model_kernels.h"
#include "model/rope_tables.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

std::string layer_name(int i, const char* what) { return "model.layers." + std::to_string(i) + "." + what; }

void zero(void* p, size_t bytes, Stream s) {
  const cudaError_t e = cudaMemsetAsync(p, 0, bytes, s);
  VR_CHECK(e == cudaSuccess, "cuda train LLM: clearing a gradient buffer failed: ", cudaGetErrorString(e));
}

}  // namespace

GpuParamLayout GpuTrainLLM::param_layout(const TextConfig& tc) {
  GpuParamLayout l;
  for (int i = 0; i < tc.layers; i++) {
    l.fused.push_back({layer_name(i, "self_attn.q_proj.weight"), layer_name(i, "self_attn.k_proj.weight"),
                       layer_name(i, "self_attn.v_proj.weight")});
    l.fused.push_back({layer_name(i, "self_attn.q_proj.bias"), layer_name(i, "self_attn.k_proj.bias"),
                       layer_name(i, "self_attn.v_proj.bias")});
  }
  l.f32_on_device.push_back("model.embed_tokens.weight");  // the gather reads the fp32 table, as the CPU
  return l;
}

GpuTrainLLM::GpuTrainLLM(const TextConfig& tc, GpuTrainParams& params, Stream s) : tc_(tc), p_(params), s_(s) {
  const int64_t D = tc.hidden, hd = tc.head_dim, Dq = int64_t(tc.heads) * hd, Dkv = int64_t(tc.kv_heads) * hd;
  embed_ = &p_.get("model.embed_tokens.weight");
  final_norm_ = &p_.get("model.norm.weight");
  lm_head_ = p_.find("lm_head.weight");
  if (!lm_head_) lm_head_ = embed_;
  VR_CHECK(embed_->w, "cuda train LLM: the token embedding has no fp32 copy on the device (use param_layout())");
  for (int i = 0; i < tc.layers; i++) {
    Layer l;
    l.in_norm = &p_.get(layer_name(i, "input_layernorm.weight"));
    l.post_norm = &p_.get(layer_name(i, "post_attention_layernorm.weight"));
    l.qkv_w = &p_.get(layer_name(i, "self_attn.q_proj.weight"));
    l.qkv_b = &p_.get(layer_name(i, "self_attn.q_proj.bias"));
    l.o = &p_.get(layer_name(i, "self_attn.o_proj.weight"));
    l.gate = &p_.get(layer_name(i, "mlp.gate_proj.weight"));
    l.up = &p_.get(layer_name(i, "mlp.up_proj.weight"));
    l.down = &p_.get(layer_name(i, "mlp.down_proj.weight"));
    // The fused GEMM reads q|k|v as one operand: the layout must have glued them (param_layout()).
    const DeviceParam& kw = p_.get(layer_name(i, "self_attn.k_proj.weight"));
    const DeviceParam& vw = p_.get(layer_name(i, "self_attn.v_proj.weight"));
    const DeviceParam& kb = p_.get(layer_name(i, "self_attn.k_proj.bias"));
    const DeviceParam& vb = p_.get(layer_name(i, "self_attn.v_proj.bias"));
    const bool glued = kw.w16 == l.qkv_w->w16 + Dq * D && vw.w16 == kw.w16 + Dkv * D &&
                       kw.g == l.qkv_w->g + Dq * D && vw.g == kw.g + Dkv * D && kb.w == l.qkv_b->w + Dq &&
                       vb.w == kb.w + Dkv && kb.g == l.qkv_b->g + Dq && vb.g == kb.g + Dkv;
    VR_CHECK(glued, "cuda train LLM: layer ", i, "'s q/k/v tensors are not fused on the device (use param_layout())");
    for (const DeviceParam* p : {l.in_norm, l.post_norm, l.qkv_b})
      VR_CHECK(p->w && p->g, "cuda train LLM: ", p->host->name, " needs fp32 weights and a gradient on the device");
    for (const DeviceParam* p : {l.qkv_w, l.o, l.gate, l.up, l.down})
      VR_CHECK(p->w16 && p->g, "cuda train LLM: ", p->host->name, " needs a bf16 shadow and a gradient");
    layers_.push_back(l);
  }
  VR_CHECK(final_norm_->w && final_norm_->g && embed_->g, "cuda train LLM: the decoder must be trainable");
}

void GpuTrainLLM::set_mlp_chunk_rows(int64_t n) {
  mlp_chunk_ = n > 0 ? n : 1;
  rows_ = 0;  // the scratch is re-carved for the new chunk at the next forward
}

void GpuTrainLLM::set_checkpointing(bool on) {
  if (on == checkpointing_) return;
  checkpointing_ = on;
  rows_ = 0;  // one layer's scratch or every layer's record: re-carved at the next forward
  T_ = 0;     // the last forward kept what the other mode's backward does not read: forward again first
}

void GpuTrainLLM::reserve(int64_t T) {
  if (T <= rows_ && std::min(T, mlp_chunk_) <= chunk_) return;
  const int64_t D = tc_.hidden, F = tc_.intermediate, hd = tc_.head_dim, L = tc_.layers;
  const int64_t Dq = int64_t(tc_.heads) * hd, Nqkv = Dq + 2 * int64_t(tc_.kv_heads) * hd;
  const int64_t C = std::min(T, mlp_chunk_);  // MLP rows per pass
  const int64_t wide = std::max({T * D, T * Dq, C * F});
  // src/plan/gpu_memory.ts decoderScratchPieces lists these pieces in this order: keep the two in step.
  const size_t nsaved = checkpointing_ ? 1 : size_t(L);
  const int64_t gu_rows = checkpointing_ ? C : T;  // gate / up rows kept: one chunk's, or every row
  auto carve = [&](auto& a) {
    acts_ = a.template take<float>((L + 1) * T * D);
    final_rstd_ = a.template take<float>(T);
    cos_ = a.template take<float>(T * hd);
    sin_ = a.template take<float>(T * hd);
    cu_ = a.template take<int32_t>(T + 2);
    hn_ = a.template take<float>(T * D);
    saved_.assign(nsaved, Saved());
    for (Saved& sv : saved_) {
      sv.rstd1 = a.template take<float>(T);
      sv.rstd2 = a.template take<float>(T);
      sv.x2 = a.template take<float>(T * D);
      sv.lse = a.template take<float>(int64_t(tc_.heads) * T);
      sv.h1 = a.template take<bf16>(T * D);
      sv.h2 = a.template take<bf16>(T * D);
      sv.qkv = a.template take<bf16>(T * Nqkv);
      sv.att = a.template take<bf16>(T * Dq);
      sv.g = a.template take<bf16>(gu_rows * F);
      sv.u = a.template take<bf16>(gu_rows * F);
    }
    act16_ = a.template take<bf16>(C * F);
    dy_ = a.template take<float>(T * D);
    dprev_ = a.template take<float>(T * D);
    dx2_ = a.template take<float>(T * D);
    dh_ = a.template take<float>(T * D);
    dF_ = a.template take<float>(C * F);
    datt_ = a.template take<float>(T * Dq);
    d16_ = a.template take<bf16>(wide);
    dg16_ = a.template take<bf16>(C * F);
    du16_ = a.template take<bf16>(C * F);
    dqkv16_ = a.template take<bf16>(T * Nqkv);
  };
  ArenaSizer size;
  carve(size);
  arena_ = DeviceArena();  // free the old one first
  arena_ = DeviceArena(size.bytes(), "training decoder activations");
  carve(arena_);
  rows_ = T;
  chunk_ = C;
  T_ = 0;  // a forward's saved state does not survive a regrowth
}

void GpuTrainLLM::embed(float* x, const int32_t* ids, int64_t T, bool check_ids) {
  VR_CHECK(T > 0, "cuda train LLM embed: no tokens");
  if (check_ids) {
    DeviceArena one(DeviceArena::round_up(sizeof(int32_t)), "token id check");
    int32_t* bad_dev = one.take<int32_t>(1);
    int32_t bad = -1;
    index_check(bad_dev, ids, T, 0, tc_.vocab, s_);
    copy_to_host(&bad, bad_dev, sizeof bad, "token id check", s_);
    VR_CHECK(bad < 0, "cuda train LLM embed: the token at position ", bad, " has an id outside [0, ", tc_.vocab,
             ")");
  }
  embedding_forward(x, ids, T, embed_->w, tc_.vocab, tc_.hidden, s_);
}

void GpuTrainLLM::embed_backward(const float* dx, const int32_t* ids, int64_t T) {
  embedding_backward(embed_->g, dx, ids, T, tc_.vocab, tc_.hidden, s_);
}

void GpuTrainLLM::attention_half(const Layer& l, const Saved& sv, const float* x, float* x2) {
  const int64_t T = T_, D = tc_.hidden, hd = tc_.head_dim;
  const int Hq = tc_.heads, Hkv = tc_.kv_heads;
  const int64_t Dq = int64_t(Hq) * hd, Nqkv = Dq + 2 * int64_t(Hkv) * hd;
  rmsnorm_forward(hn_, sv.rstd1, x, l.in_norm->w, T, D, tc_.eps, s_);
  convert(sv.h1, hn_, T * D, s_);
  gemm_linear_forward(sv.qkv, sv.h1, l.qkv_w->w16, l.qkv_b->w, T, Nqkv, D, false, s_);
  rope_forward(sv.qkv, cos_, sin_, T, Hq + Hkv, int(hd), Nqkv, s_);  // q's and k's heads are adjacent: one launch
  attention_forward(sv.att, sv.lse, sv.qkv, sv.qkv + Dq, sv.qkv + Dq + int64_t(Hkv) * hd, attn_, s_);
  if (x2 != x) copy_on_device(x2, x, size_t(T * D) * sizeof(float), "layer input", s_);
  gemm_linear_forward(x2, sv.att, l.o->w16, nullptr, T, D, Dq, /*accumulate=*/true, s_);
  rmsnorm_forward(hn_, sv.rstd2, x2, l.post_norm->w, T, D, tc_.eps, s_);
  convert(sv.h2, hn_, T * D, s_);
}

bf16* GpuTrainLLM::g_rows(const Saved& sv, int64_t r0) const {
  return checkpointing_ ? sv.g : sv.g + r0 * tc_.intermediate;
}
bf16* GpuTrainLLM::u_rows(const Saved& sv, int64_t r0) const {
  return checkpointing_ ? sv.u : sv.u + r0 * tc_.intermediate;
}

void GpuTrainLLM::gate_up(const Layer& l, const Saved& sv, int64_t r0, int64_t m) {
  const int64_t D = tc_.hidden, F = tc_.intermediate;
  bf16 *g = g_rows(sv, r0), *u = u_rows(sv, r0);
  gemm_linear_forward(g, sv.h2 + r0 * D, l.gate->w16, nullptr, m, F, D, false, s_);
  gemm_linear_forward(u, sv.h2 + r0 * D, l.up->w16, nullptr, m, F, D, false, s_);
  swiglu_forward(act16_, g, u, m * F, s_);
}

void GpuTrainLLM::forward(float* hidden, const float* x, int64_t T, const int32_t* pos3, const int32_t* cu,
                          int nseq) {
  const int64_t D = tc_.hidden, F = tc_.intermediate, hd = tc_.head_dim;
  VR_CHECK(T > 0, "cuda train LLM forward: no tokens");
  VR_CHECK(T <= 0x7fffffff, "cuda train LLM forward: too many tokens (", T, ")");
  VR_CHECK(nseq > 0 && cu[0] == 0 && cu[nseq] == T, "cuda train LLM forward: cu_seqlens must run from 0 to T=", T);
  int max_len = 0;
  for (int s = 0; s < nseq; s++) {
    VR_CHECK(cu[s + 1] > cu[s], "cuda train LLM forward: sample ", s, " is empty");
    max_len = std::max(max_len, cu[s + 1] - cu[s]);
  }
  reserve(T);
  T_ = T;
  nseq_ = nseq;
  max_seqlen_ = max_len;

  // M-RoPE tables from the CPU's definition (model/rope_tables), uploaded with the segment bounds.
  std::vector<int64_t> pos(size_t(3 * T));
  for (int64_t i = 0; i < 3 * T; i++) pos[size_t(i)] = pos3[i];
  std::vector<float> cos, sin;
  mrope_tables(tc_, pos.data(), T, T, cos, sin);
  copy_to_device(cos_, cos.data(), cos.size() * sizeof(float), "M-RoPE cos table", s_);
  copy_to_device(sin_, sin.data(), sin.size() * sizeof(float), "M-RoPE sin table", s_);
  copy_to_device(cu_, cu, size_t(nseq + 1) * sizeof(int32_t), "sample bounds", s_);

  const int64_t Nqkv = int64_t(tc_.heads + 2 * tc_.kv_heads) * hd;
  attn_ = AttnArgs();
  attn_.Hq = tc_.heads;
  attn_.Hkv = tc_.kv_heads;
  attn_.D = int(hd);
  attn_.scale = 1.0f / std::sqrt(float(hd));
  attn_.causal = true;
  attn_.nseq = nseq;
  attn_.cu_q = attn_.cu_k = cu_;
  attn_.max_seqlen_q = attn_.max_seqlen_k = max_len;
  attn_.total_q = T;
  attn_.q_stride = attn_.k_stride = attn_.v_stride = Nqkv;
  attn_.o_stride = int64_t(tc_.heads) * hd;

  const size_t TD = size_t(T * D);
  copy_on_device(acts_, x, TD * sizeof(float), "input embeddings", s_);
  for (size_t li = 0; li < layers_.size(); li++) {
    const Layer& l = layers_[li];
    float* y = acts_ + (li + 1) * TD;  // x2, then y = x2 + MLP: the next layer's input
    if (checkpointing_) {
      attention_half(l, saved_[0], acts_ + li * TD, y);
    } else {  // x2 is kept for the post-attention norm's backward
      attention_half(l, saved_[li], acts_ + li * TD, saved_[li].x2);
      copy_on_device(y, saved_[li].x2, TD * sizeof(float), "residual", s_);
    }
    const Saved& sv = saved_[checkpointing_ ? 0 : li];
    for (int64_t r0 = 0; r0 < T; r0 += chunk_) {
      const int64_t m = std::min(chunk_, T - r0);
      gate_up(l, sv, r0, m);
      gemm_linear_forward(y + r0 * D, act16_, l.down->w16, nullptr, m, D, F, /*accumulate=*/true, s_);
    }
  }
  rmsnorm_forward(hidden, final_rstd_, acts_ + layers_.size() * TD, final_norm_->w, T, D, tc_.eps, s_);
}

void GpuTrainLLM::layer_backward(const Layer& l, const Saved& sv, const float* x, const float* dy, float* dx) {
  const int64_t T = T_, D = tc_.hidden, F = tc_.intermediate, hd = tc_.head_dim;
  const int Hq = tc_.heads, Hkv = tc_.kv_heads;
  const int64_t Dq = int64_t(Hq) * hd, Dkv = int64_t(Hkv) * hd, Nqkv = Dq + 2 * Dkv;
  if (checkpointing_) attention_half(l, sv, x, sv.x2);  // recompute (activation checkpointing)

  // MLP, chunk by chunk (gate/up recomputed per chunk, or only their SwiGLU product when the forward kept them):
  // dact = dy Wdown; dWdown += dy^T act; SwiGLU backward; dh2 = dg Wgate + du Wup (+ their weight gradients).
  zero(dh_, size_t(T * D) * sizeof(float), s_);
  for (int64_t r0 = 0; r0 < T; r0 += chunk_) {
    const int64_t m = std::min(chunk_, T - r0);
    if (checkpointing_) gate_up(l, sv, r0, m);
    else swiglu_forward(act16_, g_rows(sv, r0), u_rows(sv, r0), m * F, s_);
    convert(d16_, dy + r0 * D, m * D, s_);
    zero(dF_, size_t(m * F) * sizeof(float), s_);
    gemm_linear_backward(dF_, l.down->g, nullptr, d16_, act16_, l.down->w16, m, D, F, s_);
    convert(d16_, dF_, m * F, s_);
    swiglu_backward(dg16_, du16_, d16_, g_rows(sv, r0), u_rows(sv, r0), m * F, s_);
    gemm_linear_backward(dh_ + r0 * D, l.gate->g, nullptr, dg16_, sv.h2 + r0 * D, l.gate->w16, m, F, D, s_);
    gemm_linear_backward(dh_ + r0 * D, l.up->g, nullptr, du16_, sv.h2 + r0 * D, l.up->w16, m, F, D, s_);
  }
  // Post-attention norm: dx2 = dy + rmsnorm_backward(dh2).
  copy_on_device(dx2_, dy, size_t(T * D) * sizeof(float), "residual gradient", s_);
  rmsnorm_backward(dx2_, l.post_norm->g, dh_, sv.x2, l.post_norm->w, sv.rstd2, T, D, s_);

  // o_proj, attention, RoPE, fused q|k|v projection, input norm.
  convert(d16_, dx2_, T * D, s_);
  zero(datt_, size_t(T * Dq) * sizeof(float), s_);
  gemm_linear_backward(datt_, l.o->g, nullptr, d16_, sv.att, l.o->w16, T, D, Dq, s_);
  convert(d16_, datt_, T * Dq, s_);
  zero(dqkv16_, size_t(T * Nqkv) * sizeof(bf16), s_);
  attention_backward(dqkv16_, dqkv16_ + Dq, dqkv16_ + Dq + Dkv, d16_, sv.att, sv.lse, sv.qkv, sv.qkv + Dq,
                     sv.qkv + Dq + Dkv, attn_, s_);
  rope_backward(dqkv16_, cos_, sin_, T, Hq + Hkv, int(hd), Nqkv, s_);
  zero(dh_, size_t(T * D) * sizeof(float), s_);
  gemm_linear_backward(dh_, l.qkv_w->g, l.qkv_b->g, dqkv16_, sv.h1, l.qkv_w->w16, T, Nqkv, D, s_);
  copy_on_device(dx, dx2_, size_t(T * D) * sizeof(float), "residual gradient", s_);
  rmsnorm_backward(dx, l.in_norm->g, dh_, x, l.in_norm->w, sv.rstd1, T, D, s_);
}

void GpuTrainLLM::backward(float* dx, const float* dhidden) {
  VR_CHECK(T_ > 0, "cuda train LLM backward: no forward pass to differentiate");
  const int64_t T = T_, D = tc_.hidden;
  const size_t TD = size_t(T * D);
  zero(dy_, TD * sizeof(float), s_);
  rmsnorm_backward(dy_, final_norm_->g, dhidden, acts_ + layers_.size() * TD, final_norm_->w, final_rstd_, T, D, s_);
  for (size_t li = layers_.size(); li-- > 0;) {
    layer_backward(layers_[li], saved_[checkpointing_ ? 0 : li], acts_ + li * TD, dy_, dprev_);
    std::swap(dy_, dprev_);
  }
  copy_on_device(dx, dy_, TD * sizeof(float), "input embedding gradient", s_);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
