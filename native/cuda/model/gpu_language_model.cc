#include "cuda/model/gpu_language_model.h"

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "cuda/gemm/gemm.h"
#include "cuda/model/cuda_runtime.h"
#include "cuda/model/model_kernels.h"
#include "model/rope_tables.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

std::atomic<int64_t> g_split_kv_forwards{0};

// A non-negative integer from the environment, `fallback` when unset; `what` says what it means in the error.
int64_t env_count(const char* name, int64_t fallback, int64_t hi, const char* what) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(v, &end, 10);
  VR_CHECK(*end == 0 && errno == 0 && n >= 0 && n <= hi, name, "=", v, " is not an integer in [0, ",
           hi == INT64_MAX ? std::string("inf)") : std::to_string(hi) + "]", " (", what, ")");
  return int64_t(n);
}

}  // namespace

GpuLanguageModel::GpuLanguageModel(const DeviceWeights& w, Stream s)
    : w_(w),
      tc_(w.config().text),
      s_(s),
      split_kv_min_keys_(env_count("VREFLECT_SPLIT_KV_MIN_KEYS", kDefaultSplitKvMinKeys, INT64_MAX,
                                   "keys from which decode forwards use split-KV attention; 0: always")),
      split_kv_splits_(int(env_count("VREFLECT_SPLIT_KV_SPLITS", 0, kMaxDecodeSplits,
                                     "split count of split-KV attention; 0: from the keys and SMs"))),
      sms_(device_sm_count()) {
  VR_CHECK(!w.layers.empty() && w.embed && w.final_norm && w.lm_head.w, "cuda language model: weights not uploaded");
}

int64_t GpuLanguageModel::split_kv_forwards() { return g_split_kv_forwards.load(std::memory_order_relaxed); }

void GpuLanguageModel::set_split_kv_min_keys(int64_t keys) {
  VR_CHECK(keys >= 0, "cuda language model: split-KV threshold ", keys, " < 0");
  split_kv_min_keys_ = keys;
}

template <class Arena>
void GpuLanguageModel::carve(Arena& a, const TextConfig& tc, int64_t rows, Scratch& s) {
  const int64_t D = tc.hidden, F = tc.intermediate, hd = tc.head_dim;
  const int64_t Dq = int64_t(tc.heads) * hd, Nqkv = Dq + 2 * int64_t(tc.kv_heads) * hd;
  s.x = a.template take<float>(rows * D);
  s.h16 = a.template take<bf16>(rows * D);
  s.qkv16 = a.template take<bf16>(rows * Nqkv);
  s.att16 = a.template take<bf16>(rows * Dq);
  s.g16 = a.template take<bf16>(rows * F);
  s.u16 = a.template take<bf16>(rows * F);
  s.cos = a.template take<float>(rows * hd);
  s.sin = a.template take<float>(rows * hd);
  s.lse = a.template take<float>(rows * tc.heads);
  s.cu = a.template take<int32_t>(8);
}

size_t GpuLanguageModel::scratch_bytes(int64_t rows) const {
  ArenaSizer size;
  Scratch unused;
  carve(size, tc_, rows, unused);
  return size.bytes();
}

void GpuLanguageModel::reserve(int64_t rows) {
  if (rows <= scratch_rows_) return;
  scratch_ = DeviceArena();  // free the old one first
  scratch_rows_ = 0;
  scratch_ = DeviceArena(scratch_bytes(rows), "language model activations");
  carve(scratch_, tc_, rows, sc_);
  scratch_rows_ = rows;
}

void GpuLanguageModel::embed(float* x, const int32_t* ids, int64_t T, bool check_ids) {
  VR_CHECK(T > 0, "cuda language model embed: no tokens");
  reserve(T);
  int32_t bad = -1;
  int32_t* bad_dev = sc_.cu + kBoundsInts;
  if (check_ids) {
    index_check(bad_dev, ids, T, 0, tc_.vocab, s_);
    copy_to_host(&bad, bad_dev, sizeof bad, "token id check", s_);
  }
  VR_CHECK(bad < 0, "cuda language model embed: the token at position ", bad, " has an id outside [0, ", tc_.vocab,
           ")");
  embedding_forward(sc_.h16, ids, T, w_.embed, tc_.vocab, tc_.hidden, s_);
  convert(x, sc_.h16, T * tc_.hidden, s_);
}

GpuLanguageModel::DecodePlan GpuLanguageModel::plan_attention(int64_t T, int64_t c) {
  const int Hq = tc_.heads, Hkv = tc_.kv_heads;
  DecodePlan p;
  p.rows = T;
  // Decode attention path (see the header): one split count for all layers (the same keys), workspace grown once.
  p.split_kv = T <= kMaxDecodeRows && (Hq / Hkv) * T <= kMaxDecodeGroupRows && c + T >= split_kv_min_keys_;
  if (!p.split_kv) return p;
  p.splits = split_kv_splits_ > 0 ? split_kv_splits_ : attention_decode_splits(c + T, Hkv, sms_);
  const size_t ws_floats = attention_decode_workspace_floats(Hq, int(T), int(tc_.head_dim), p.splits);
  if (decode_ws_floats_ < ws_floats) {
    decode_ws_ = DeviceArena();  // free the old one first
    decode_ws_floats_ = 0;
    decode_ws_ = DeviceArena(DeviceArena::round_up(ws_floats * sizeof(float)), "split-KV attention workspace");
    decode_ws_ptr_ = decode_ws_.take<float>(int64_t(ws_floats));
    decode_ws_floats_ = ws_floats;
  }
  g_split_kv_forwards.fetch_add(1, std::memory_order_relaxed);
  return p;
}

void GpuLanguageModel::forward(float* hidden, const float* x_in, int64_t T, const int64_t* pos3,
                               int64_t plane_stride, GpuKVCache& cache, const DeviceAttnProbe* probe) {
  VR_CHECK(T > 0, "cuda language model forward: no tokens");
  cache.check_room(T);
  reserve(T);
  const int64_t c = cache.len();
  const DecodePlan plan = plan_attention(T, c);

  // M-RoPE tables and the segment bounds are made on the host (model/rope_tables, as the CPU model) and uploaded.
  std::vector<float> cos, sin;
  mrope_tables(tc_, pos3, T, plane_stride, cos, sin);
  copy_to_device(sc_.cos, cos.data(), cos.size() * sizeof(float), "M-RoPE cos table", s_);
  copy_to_device(sc_.sin, sin.data(), sin.size() * sizeof(float), "M-RoPE sin table", s_);
  const int32_t cu[kBoundsInts] = {0, int32_t(T), 0, int32_t(c + T), int32_t(c)};
  copy_to_device(sc_.cu, cu, sizeof cu, "attention segment bounds", s_);
  run_layers(hidden, x_in, T, c + T, plan, cache, probe);
  cache.advance(T);
}

GpuLanguageModel::DecodePlan GpuLanguageModel::stage_decode(const int64_t* pos3, int64_t T, int64_t plane_stride,
                                                            const GpuKVCache& cache) {
  VR_CHECK(T > 0 && T <= kMaxDecodeRows, "cuda language model decode step: ", T, " rows outside [1, ",
           kMaxDecodeRows, "]");
  cache.check_room(T);
  reserve(T);
  const int64_t c = cache.len(), hd = tc_.head_dim;
  VR_CHECK(c + T <= INT32_MAX, "cuda language model decode step: ", c + T, " keys overflow the int32 bounds");
  DecodePlan plan = plan_attention(T, c);
  plan.cache = cache.k(0);
  plan.capacity = cache.capacity();
  const size_t table = size_t(kMaxDecodeRows * hd) * sizeof(float);
  if (!staging_.data()) staging_ = PinnedBuffer(2 * table + kBoundsInts * sizeof(int32_t), "the decode step's tables");
  plan.scratch = sc_.x;
  plan.workspace = plan.split_kv ? decode_ws_ptr_ : nullptr;
  plan.staging = staging_.data();
  std::vector<float> cos, sin;
  mrope_tables(tc_, pos3, T, plane_stride, cos, sin);
  // The previous step's copies out of the block must have run before it is refilled.
  const cudaError_t e = cudaStreamSynchronize(s_);
  VR_CHECK(e == cudaSuccess, "cuda: decode step: waiting for the previous step failed: ", cudaGetErrorString(e));
  std::memcpy(staging_.as<float>(), cos.data(), cos.size() * sizeof(float));
  std::memcpy(staging_.as<float>(table), sin.data(), sin.size() * sizeof(float));
  const int32_t cu[kBoundsInts] = {0, int32_t(T), 0, int32_t(c + T), int32_t(c)};
  std::memcpy(staging_.as<int32_t>(2 * table), cu, sizeof cu);
  return plan;
}

void GpuLanguageModel::enqueue_decode(float* hidden, const float* x, const DecodePlan& plan, GpuKVCache& cache,
                                      const DeviceAttnProbe* probe) {
  const int64_t T = plan.rows, hd = tc_.head_dim;
  VR_CHECK(staging_.data() && T > 0 && plan.cache == cache.k(0) && plan.capacity == cache.capacity() &&
               plan.scratch == sc_.x && plan.staging == staging_.data() &&
               plan.workspace == (plan.split_kv ? decode_ws_ptr_ : nullptr),
           "cuda language model decode step: the plan is not from stage_decode with this cache and these buffers");
  cache.check_room(T);
  const size_t table = size_t(kMaxDecodeRows * hd) * sizeof(float), used = size_t(T * hd) * sizeof(float);
  copy_to_device(sc_.cos, staging_.as<float>(), used, "M-RoPE cos table", s_);
  copy_to_device(sc_.sin, staging_.as<float>(table), used, "M-RoPE sin table", s_);
  copy_to_device(sc_.cu, staging_.as<int32_t>(2 * table), kBoundsInts * sizeof(int32_t), "attention segment bounds",
                 s_);
  // The key count baked into the launches' arguments is an upper bound only (no kernel reads it): the capacity.
  run_layers(hidden, x, T, plan.capacity, plan, cache, probe);
}

void GpuLanguageModel::run_layers(float* hidden, const float* x_in, int64_t T, int64_t keys, const DecodePlan& plan,
                                  GpuKVCache& cache, const DeviceAttnProbe* probe) {
  const int64_t D = tc_.hidden, F = tc_.intermediate, hd = tc_.head_dim;
  const int Hq = tc_.heads, Hkv = tc_.kv_heads;
  const int64_t Dq = int64_t(Hq) * hd, Dkv = int64_t(Hkv) * hd, Nqkv = Dq + 2 * Dkv;
  const int64_t c = cache.len();
  if (probe)
    VR_CHECK(probe->probs && probe->key_begin >= 0 && probe->key_begin <= probe->key_end && probe->key_end <= c + T,
             "cuda language model forward: attention probe keys [", probe->key_begin, ", ", probe->key_end,
             ") outside the ", c + T, " keys");

  AttnArgs a;
  a.Hq = Hq;
  a.Hkv = Hkv;
  a.D = int(hd);
  a.scale = 1.0f / std::sqrt(float(hd));
  a.causal = true;  // bottom-right aligned: new row i sees the c cached keys and new keys 0..i
  a.nseq = 1;
  a.cu_q = sc_.cu;
  a.cu_k = sc_.cu + 2;
  a.max_seqlen_q = int(T);
  a.max_seqlen_k = int(keys);
  a.total_q = T;
  a.q_stride = Nqkv;
  a.k_stride = a.v_stride = Dkv;
  a.o_stride = Dq;
  const size_t ws_floats =
      plan.split_kv ? attention_decode_workspace_floats(Hq, int(T), int(hd), plan.splits) : size_t(0);

  copy_on_device(sc_.x, x_in, size_t(T * D) * sizeof(float), "input embeddings", s_);
  for (size_t li = 0; li < w_.layers.size(); li++) {
    const DeviceDecoderLayer& l = w_.layers[li];
    bf16* K = cache.k(int(li));
    bf16* V = cache.v(int(li));
    rmsnorm_to_bf16(sc_.h16, sc_.x, l.in_norm, T, D, tc_.eps, s_);
    gemm_linear_forward(sc_.qkv16, sc_.h16, l.qkv.w, l.qkv.b, T, Nqkv, D, false, s_);
    // q's Hq heads and k's Hkv heads are adjacent in each row: one RoPE launch rotates both.
    rope_forward(sc_.qkv16, sc_.cos, sc_.sin, T, Hq + Hkv, int(hd), Nqkv, s_);
    // The append row is read on the device (scratch cu[4] = the cache length), as the attention's key count.
    kv_append_at(K, V, sc_.qkv16 + Dq, sc_.qkv16 + Dq + Dkv, sc_.cu + 4, T, Dkv, Nqkv, Nqkv, s_);
    if (plan.split_kv)
      attention_decode(sc_.att16, probe ? sc_.lse : nullptr, sc_.qkv16, K, V, a, plan.splits, decode_ws_ptr_,
                       ws_floats, s_);
    else
      attention_forward(sc_.att16, probe ? sc_.lse : nullptr, sc_.qkv16, K, V, a, s_);
    if (probe)  // softmax row of the last query: p_j = exp(q.k_j * scale - lse), mean over heads and layers
      attention_probe(probe->probs, sc_.qkv16 + (T - 1) * Nqkv, sc_.lse + (T - 1), T, K, probe->key_begin,
                      probe->key_end - probe->key_begin, Hq, Hkv, int(hd), a.scale, 1.0f / float(Hq * tc_.layers),
                      /*accumulate=*/li > 0, s_);
    gemm_linear_forward(sc_.x, sc_.att16, l.o.w, nullptr, T, D, Dq, /*accumulate=*/true, s_);
    rmsnorm_to_bf16(sc_.h16, sc_.x, l.post_norm, T, D, tc_.eps, s_);
    gemm_swiglu_forward(sc_.g16, sc_.u16, sc_.h16, l.gate.w, l.up.w, T, F, D, s_);  // fused for decode steps
    gemm_linear_forward(sc_.x, sc_.g16, l.down.w, nullptr, T, D, F, /*accumulate=*/true, s_);
  }
  rmsnorm_forward(hidden, nullptr, sc_.x, w_.final_norm, T, D, tc_.eps, s_);
}

void GpuLanguageModel::logits(float* out, const float* hidden, int64_t rows) {
  VR_CHECK(rows > 0, "cuda language model logits: no rows");
  reserve(rows);
  convert(sc_.h16, hidden, rows * tc_.hidden, s_);
  gemm_linear_forward(out, sc_.h16, w_.lm_head.w, nullptr, rows, tc_.vocab, tc_.hidden, false, s_);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
