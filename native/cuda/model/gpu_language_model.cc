#include "cuda/model/gpu_language_model.h"

#include <cmath>
#include <vector>

#include "core/error.h"
#include "cuda/gemm/gemm.h"
#include "cuda/model/model_kernels.h"
#include "model/rope_tables.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

GpuLanguageModel::GpuLanguageModel(const DeviceWeights& w, Stream s) : w_(w), tc_(w.config().text), s_(s) {
  VR_CHECK(!w.layers.empty() && w.embed && w.final_norm && w.lm_head.w, "cuda language model: weights not uploaded");
}

void GpuLanguageModel::reserve(int64_t rows) {
  if (rows <= scratch_rows_) return;
  const int64_t D = tc_.hidden, F = tc_.intermediate, hd = tc_.head_dim;
  const int64_t Dq = int64_t(tc_.heads) * hd, Nqkv = Dq + 2 * int64_t(tc_.kv_heads) * hd;
  auto carve = [&](auto& arena) {
    x_ = arena.template take<float>(rows * D);
    h16_ = arena.template take<bf16>(rows * D);
    qkv16_ = arena.template take<bf16>(rows * Nqkv);
    att16_ = arena.template take<bf16>(rows * Dq);
    g16_ = arena.template take<bf16>(rows * F);
    u16_ = arena.template take<bf16>(rows * F);
    cos_ = arena.template take<float>(rows * hd);
    sin_ = arena.template take<float>(rows * hd);
    lse_ = arena.template take<float>(rows * tc_.heads);
    cu_ = arena.template take<int32_t>(8);
  };
  ArenaSizer size;
  carve(size);
  scratch_ = DeviceArena();  // free the old one first
  scratch_ = DeviceArena(size.bytes(), "language model activations");
  carve(scratch_);
  scratch_rows_ = rows;
}

void GpuLanguageModel::embed(float* x, const int32_t* ids, int64_t T, bool check_ids) {
  VR_CHECK(T > 0, "cuda language model embed: no tokens");
  reserve(T);
  int32_t bad = -1;
  if (check_ids) {
    index_check(cu_ + 4, ids, T, 0, tc_.vocab, s_);
    copy_to_host(&bad, cu_ + 4, sizeof bad, "token id check", s_);
  }
  VR_CHECK(bad < 0, "cuda language model embed: the token at position ", bad, " has an id outside [0, ", tc_.vocab,
           ")");
  embedding_forward(h16_, ids, T, w_.embed, tc_.vocab, tc_.hidden, s_);
  convert(x, h16_, T * tc_.hidden, s_);
}

void GpuLanguageModel::forward(float* hidden, const float* x_in, int64_t T, const int64_t* pos3,
                               int64_t plane_stride, GpuKVCache& cache, const DeviceAttnProbe* probe) {
  const int64_t D = tc_.hidden, F = tc_.intermediate, hd = tc_.head_dim;
  const int Hq = tc_.heads, Hkv = tc_.kv_heads;
  const int64_t Dq = int64_t(Hq) * hd, Dkv = int64_t(Hkv) * hd, Nqkv = Dq + 2 * Dkv;
  VR_CHECK(T > 0, "cuda language model forward: no tokens");
  cache.check_room(T);
  reserve(T);
  const int64_t c = cache.len();
  if (probe)
    VR_CHECK(probe->probs && probe->key_begin >= 0 && probe->key_begin <= probe->key_end && probe->key_end <= c + T,
             "cuda language model forward: attention probe keys [", probe->key_begin, ", ", probe->key_end,
             ") outside the ", c + T, " keys");

  // M-RoPE tables and the segment bounds are made on the host (model/rope_tables, as the CPU model) and uploaded.
  std::vector<float> cos, sin;
  mrope_tables(tc_, pos3, T, plane_stride, cos, sin);
  copy_to_device(cos_, cos.data(), cos.size() * sizeof(float), "M-RoPE cos table", s_);
  copy_to_device(sin_, sin.data(), sin.size() * sizeof(float), "M-RoPE sin table", s_);
  const int32_t cu[4] = {0, int32_t(T), 0, int32_t(c + T)};
  copy_to_device(cu_, cu, sizeof cu, "attention segment bounds", s_);

  AttnArgs a;
  a.Hq = Hq;
  a.Hkv = Hkv;
  a.D = int(hd);
  a.scale = 1.0f / std::sqrt(float(hd));
  a.causal = true;  // bottom-right aligned: new row i sees the c cached keys and new keys 0..i
  a.nseq = 1;
  a.cu_q = cu_;
  a.cu_k = cu_ + 2;
  a.max_seqlen_q = int(T);
  a.max_seqlen_k = int(c + T);
  a.total_q = T;
  a.q_stride = Nqkv;
  a.k_stride = a.v_stride = Dkv;
  a.o_stride = Dq;

  copy_on_device(x_, x_in, size_t(T * D) * sizeof(float), "input embeddings", s_);
  for (size_t li = 0; li < w_.layers.size(); li++) {
    const DeviceDecoderLayer& l = w_.layers[li];
    bf16* K = cache.k(int(li));
    bf16* V = cache.v(int(li));
    rmsnorm_to_bf16(h16_, x_, l.in_norm, T, D, tc_.eps, s_);
    gemm_linear_forward(qkv16_, h16_, l.qkv.w, l.qkv.b, T, Nqkv, D, false, s_);
    rope_forward(qkv16_, cos_, sin_, T, Hq, int(hd), Nqkv, s_);
    rope_forward(qkv16_ + Dq, cos_, sin_, T, Hkv, int(hd), Nqkv, s_);
    kv_append(K, V, qkv16_ + Dq, qkv16_ + Dq + Dkv, c, T, Dkv, Nqkv, Nqkv, cache.capacity(), s_);
    attention_forward(att16_, probe ? lse_ : nullptr, qkv16_, K, V, a, s_);
    if (probe)  // softmax row of the last query: p_j = exp(q.k_j * scale - lse), mean over heads and layers
      attention_probe(probe->probs, qkv16_ + (T - 1) * Nqkv, lse_ + (T - 1), T, K, probe->key_begin,
                      probe->key_end - probe->key_begin, Hq, Hkv, int(hd), a.scale, 1.0f / float(Hq * tc_.layers),
                      /*accumulate=*/li > 0, s_);
    gemm_linear_forward(x_, att16_, l.o.w, nullptr, T, D, Dq, /*accumulate=*/true, s_);
    rmsnorm_to_bf16(h16_, x_, l.post_norm, T, D, tc_.eps, s_);
    gemm_linear_forward(g16_, h16_, l.gate.w, nullptr, T, F, D, false, s_);
    gemm_linear_forward(u16_, h16_, l.up.w, nullptr, T, F, D, false, s_);
    swiglu_forward(g16_, g16_, u16_, T * F, s_);
    gemm_linear_forward(x_, g16_, l.down.w, nullptr, T, D, F, /*accumulate=*/true, s_);
  }
  cache.advance(T);
  rmsnorm_forward(hidden, nullptr, x_, w_.final_norm, T, D, tc_.eps, s_);
}

void GpuLanguageModel::logits(float* out, const float* hidden, int64_t rows) {
  VR_CHECK(rows > 0, "cuda language model logits: no rows");
  reserve(rows);
  convert(h16_, hidden, rows * tc_.hidden, s_);
  gemm_linear_forward(out, h16_, w_.lm_head.w, nullptr, rows, tc_.vocab, tc_.hidden, false, s_);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
