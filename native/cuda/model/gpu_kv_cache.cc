#include "cuda/model/gpu_kv_cache.h"

#include "core/error.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

GpuKVCache::GpuKVCache(const TextConfig& tc, int64_t capacity)
    : GpuKVCache(tc.layers, int64_t(tc.kv_heads) * tc.head_dim, capacity) {}

GpuKVCache::GpuKVCache(int layers, int64_t row, int64_t capacity) : layers_(layers), row_(row), cap_(capacity) {
  VR_CHECK(capacity > 0 && layers_ > 0 && row_ > 0, "cuda KV cache: bad shape (", layers_, " layers, capacity ",
           capacity, ", row ", row_, ")");
  arena_ = DeviceArena(DeviceArena::round_up(bytes()), "KV cache");
  base_ = arena_.take<bf16>(int64_t(layers_) * 2 * cap_ * row_);
}

GpuKVCache GpuKVCache::grown(int64_t capacity, Stream s) const {
  VR_CHECK(capacity >= len_, "cuda KV cache: cannot shrink ", len_, " rows to a capacity of ", capacity);
  GpuKVCache g(layers_, row_, capacity);
  const size_t bytes = size_t(len_ * row_) * sizeof(bf16);
  for (int l = 0; l < layers_; l++) {
    copy_on_device(g.k(l), k(l), bytes, "KV cache keys (growing the cache)", s);
    copy_on_device(g.v(l), v(l), bytes, "KV cache values (growing the cache)", s);
  }
  g.len_ = len_;
  return g;
}

void GpuKVCache::check_room(int64_t extra) const {
  VR_CHECK(len_ + extra <= cap_, "cuda KV cache: ", len_, " + ", extra, " tokens exceed its capacity of ", cap_,
           " (make the session with a larger token budget)");
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
