// The language model's KV cache on the device: per layer, bf16 rows [capacity, kv_heads * head_dim] for keys
// (after RoPE, as model/kv_cache.h) and values, all layers in one DeviceArena. The capacity is fixed when the
// cache is made (the session knows prompt + max new tokens); appending past it is a one-line vr::Error.
#pragma once
#include <cstdint>

#include "cuda/kernels/cuda_kernels.h"
#include "cuda/model/device_arena.h"
#include "model/config.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

class GpuKVCache {
 public:
  GpuKVCache(const TextConfig& tc, int64_t capacity);
  int64_t len() const { return len_; }
  int64_t capacity() const { return cap_; }
  int64_t row() const { return row_; }
  bf16* k(int layer) const { return base_ + (int64_t(layer) * 2) * cap_ * row_; }
  bf16* v(int layer) const { return base_ + (int64_t(layer) * 2 + 1) * cap_ * row_; }
  // Throws (one line) unless `extra` more tokens fit.
  void check_room(int64_t extra) const;
  void advance(int64_t n) { len_ += n; }
  void clear() { len_ = 0; }
  // A cache of `capacity` (>= len) rows holding this one's rows, copied on the device: how a decode that outruns
  // its capacity (several latent phases) moves on.
  GpuKVCache grown(int64_t capacity, Stream s = nullptr) const;
  uint64_t bytes() const { return uint64_t(layers_) * 2 * uint64_t(cap_) * uint64_t(row_) * sizeof(bf16); }

 private:
  GpuKVCache(int layers, int64_t row, int64_t capacity);
  int layers_;
  int64_t row_, cap_, len_ = 0;
  DeviceArena arena_;
  bf16* base_ = nullptr;
};

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
