// Per-layer key/value cache of the language model. Keys are stored after RoPE (as transformers does), so
// positions never need recomputing. fp32 rows [len, kv_heads, head_dim]; grows by doubling.
#pragma once
#include <cstdint>
#include <vector>

namespace vr {

class KVCache {
 public:
  KVCache(int layers, int kv_heads, int head_dim) : k_(layers), v_(layers), row_(int64_t(kv_heads) * head_dim) {}
  int64_t len() const { return len_; }
  int64_t row() const { return row_; }
  // Make room for `extra` more tokens in every layer (call before a forward of that many tokens).
  void reserve(int64_t extra);
  float* k(int layer) { return k_[layer].data(); }
  float* v(int layer) { return v_[layer].data(); }
  void advance(int64_t n) { len_ += n; }
  void clear() { len_ = 0; }
  uint64_t bytes() const { return uint64_t(cap_) * row_ * 2 * k_.size() * sizeof(float); }

 private:
  std::vector<std::vector<float>> k_, v_;
  int64_t row_;
  int64_t len_ = 0, cap_ = 0;
};

}  // namespace vr
