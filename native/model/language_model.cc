#include "model/language_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/grow.h"
#include "cpu/op_profile.h"
#include "model/rope_tables.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/embedding.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "model/swiglu_mlp.h"

namespace vr {

LanguageModel::LanguageModel(const TextConfig& tc, WeightStore& ws, DType compute) : tc_(tc) {
  const int64_t D = tc.hidden, F = tc.intermediate, hd = tc.head_dim;
  const int64_t Dq = int64_t(tc.heads) * hd, Dkv = int64_t(tc.kv_heads) * hd;
  const TensorView& emb = ws.get("model.embed_tokens.weight", {tc.vocab, D});
  embed_table_ = emb.data;
  embed_dtype_ = emb.dtype;
  for (int i = 0; i < tc.layers; i++) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    Layer l;
    l.in_norm = ws.vec_f32(p + "input_layernorm.weight", D);
    l.post_norm = ws.vec_f32(p + "post_attention_layernorm.weight", D);
    l.q = ws.linear(p + "self_attn.q_proj.weight", p + "self_attn.q_proj.bias", Dq, D, compute);
    l.k = ws.linear(p + "self_attn.k_proj.weight", p + "self_attn.k_proj.bias", Dkv, D, compute);
    l.v = ws.linear(p + "self_attn.v_proj.weight", p + "self_attn.v_proj.bias", Dkv, D, compute);
    l.o = ws.linear(p + "self_attn.o_proj.weight", "", D, Dq, compute);
    l.gate = ws.linear(p + "mlp.gate_proj.weight", "", F, D, compute);
    l.up = ws.linear(p + "mlp.up_proj.weight", "", F, D, compute);
    l.down = ws.linear(p + "mlp.down_proj.weight", "", D, F, compute);
    layers_.push_back(l);
  }
  final_norm_ = ws.vec_f32("model.norm.weight", D);
  if (tc.tie_embeddings) {
    lm_head_ = ws.linear("model.embed_tokens.weight", "", tc.vocab, D, compute, /*packable=*/false);
  } else {
    lm_head_ = ws.linear("lm_head.weight", "", tc.vocab, D, compute);
  }
}

void LanguageModel::embed(float* out, const int32_t* ids, int64_t T) const {
  embedding_forward(out, ids, T, embed_table_, embed_dtype_, tc_.vocab, tc_.hidden);
}

void LanguageModel::forward(float* hidden, const float* x_in, int64_t T, const int64_t* pos3, int64_t plane_stride,
                            KVCache& cache, AttnProbe* probe, Progress* progress, LLMWorkspace* work) const {
  LLMWorkspace local;
  LLMWorkspace& w = work ? *work : local;
  const int64_t D = tc_.hidden, hd = tc_.head_dim;
  const int Hq = tc_.heads, Hkv = tc_.kv_heads;
  const int64_t Dq = int64_t(Hq) * hd, Dkv = int64_t(Hkv) * hd;
  VR_CHECK(T > 0, "language model forward: no tokens");
  cache.reserve(T);
  const int64_t c = cache.len();

  {
    prof::Scope sc("llm mrope tables");
    mrope_tables(tc_, pos3, T, plane_stride, w.cos, w.sin);
  }
  const float* cos = w.cos.data();
  const float* sin = w.sin.data();

  // x, q and h16 get the padded row count of the bf16 GEMMs (linear_padded_rows), so those GEMMs run in place; the
  // extra rows of h16 are zeros, those of x and q collect junk nobody reads.
  const int64_t Tp = linear_padded_rows(T);
  float* x = grow(w.x, Tp * D);
  std::memcpy(x, x_in, size_t(T * D) * sizeof(float));
  float* q = grow(w.q, Tp * Dq);
  float* att = grow(w.att, T * Dq);
  float* lse = grow(w.lse, int64_t(Hq) * T);
  // BF16 weights: the RMSNorm writes bf16 (h16) once for q/k/v and once for gate/up; h (fp32) is not used.
  const bool bf16 = !layers_.empty() && layers_[0].q.dtype == DType::BF16;
  float* h = bf16 ? nullptr : grow(w.h, T * D);  // fp32 norm output (bf16 weights: only h16)
  uint16_t* h16 = bf16 ? grow(w.h16, Tp * D) : nullptr;
  if (h16) std::memset(h16 + T * D, 0, size_t((Tp - T) * D) * sizeof(uint16_t));
  const int32_t cu_q[2] = {0, int32_t(T)};
  const int32_t cu_k[2] = {0, int32_t(c + T)};
  if (probe) probe->probs.assign(size_t(probe->key_end - probe->key_begin), 0.f);

  for (size_t li = 0; li < layers_.size(); li++) {
    const Layer& l = layers_[li];
    float* K = cache.k(int(li));
    float* V = cache.v(int(li));
    if (bf16) {
      {
        prof::Scope sc("llm rmsnorm (-> bf16)");
        rmsnorm_forward_bf16(h16, x, l.in_norm, T, D, tc_.eps);
      }
      linear_forward_bf16in(q, h16, l.q, T, /*accumulate=*/false, /*padded=*/true);
      linear_forward_bf16in(K + c * Dkv, h16, l.k, T);
      linear_forward_bf16in(V + c * Dkv, h16, l.v, T);
    } else {
      {
        prof::Scope sc("llm rmsnorm");
        rmsnorm_forward(h, nullptr, x, l.in_norm, T, D, tc_.eps);
      }
      linear_forward(q, h, l.q, T);
      linear_forward(K + c * Dkv, h, l.k, T);
      linear_forward(V + c * Dkv, h, l.v, T);
    }
    {
      prof::Scope sc("llm rope");
      rope_forward(q, cos, sin, T, Hq, int(hd), Dq);
      rope_forward(K + c * Dkv, cos, sin, T, Hkv, int(hd), Dkv);
    }
    AttnParams ap;
    ap.Hq = Hq;
    ap.Hkv = Hkv;
    ap.D = int(hd);
    ap.scale = 1.0f / std::sqrt(float(hd));
    ap.causal = true;
    ap.bf16 = bf16;  // bf16 weights: bf16 attention tiles too (fp32 keeps fp32 attention)
    ap.nseq = 1;
    ap.cu_q = cu_q;
    ap.cu_k = cu_k;
    ap.q_stride = ap.o_stride = Dq;
    ap.k_stride = ap.v_stride = Dkv;
    {
      // causal: query i sees c + i + 1 keys; QK^T and PV, 2 FLOP per multiply-add
      prof::Scope sc("llm attention", 4.0 * double(Dq) * (double(T) * c + double(T) * (T + 1) / 2));
      attention_forward(att, lse, q, K, V, ap);
    }
    if (probe) {
      // softmax row of the last query: p_j = exp(q.k_j * scale - lse)
      const int64_t t = T - 1, nk = probe->key_end - probe->key_begin;
      const int group = Hq / Hkv;
      for (int hh = 0; hh < Hq; hh++) {
        const float* qv = &q[t * Dq + hh * hd];
        const float l0 = lse[size_t(hh) * T + t];
        for (int64_t j = 0; j < nk; j++) {
          const float* kv = K + (probe->key_begin + j) * Dkv + (hh / group) * hd;
          float s = 0.f;
          for (int64_t d = 0; d < hd; d++) s += qv[d] * kv[d];
          probe->probs[j] += std::exp(s * ap.scale - l0) / float(Hq * tc_.layers);
        }
      }
    }
    linear_forward(x, att, l.o, T, /*accumulate=*/true, /*padded=*/true);
    if (bf16) {  // the MLP reads only h16
      prof::Scope sc("llm rmsnorm (-> bf16)");
      rmsnorm_forward_bf16(h16, x, l.post_norm, T, D, tc_.eps);
    } else {
      prof::Scope sc("llm rmsnorm");
      rmsnorm_forward(h, nullptr, x, l.post_norm, T, D, tc_.eps);
    }
    swiglu_mlp_forward(x, h, T, D, l.gate, l.up, l.down, w.mlp, 1024, bf16 ? h16 : nullptr, /*rows_padded=*/true);
    if (progress) progress->step();
  }
  cache.advance(T);
  prof::Scope sc("llm rmsnorm");
  rmsnorm_forward(hidden, nullptr, x, final_norm_, T, D, tc_.eps);
}

void LanguageModel::logits(float* out, const float* hidden, int64_t T) const {
  linear_forward(out, hidden, lm_head_, T);
}

}  // namespace vr
