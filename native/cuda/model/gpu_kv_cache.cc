#include "cuda/model/gpu_kv_cache.h"

#include "core/error.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

GpuKVCache::GpuKVCache(const TextConfig& tc, int64_t capacity)
    : layers_(tc.layers), row_(int64_t(tc.kv_heads) * tc.head_dim), cap_(capacity) {
  VR_CHECK(capacity > 0 && layers_ > 0 && row_ > 0, "cuda KV cache: bad shape (", layers_, " layers, capacity ",
           capacity, ", row ", row_, ")");
  arena_ = DeviceArena(DeviceArena::round_up(bytes()), "KV cache");
  base_ = arena_.take<bf16>(int64_t(layers_) * 2 * cap_ * row_);
}

void GpuKVCache::check_room(int64_t extra) const {
  VR_CHECK(len_ + extra <= cap_, "cuda KV cache: ", len_, " + ", extra, " tokens exceed its capacity of ", cap_,
           " (make the session with a larger token budget)");
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
