// One device allocation carved into aligned pieces: the model's weights (and a session's KV cache) live in a
// few large cudaMallocs instead of hundreds of small ones. A failed allocation is a one-line vr::Error naming
// the bytes asked for and the bytes free on the device.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "cuda/kernels/cuda_kernels.h"  // VR_CUDA_ABI: the emulated and the nvcc build keep apart

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

class DeviceArena {
 public:
  static constexpr size_t kAlign = 256;  // cudaMalloc's alignment: every piece can be a vector-load / TMA source
  DeviceArena() = default;
  // `what` names the arena in the error message ("model weights", "KV cache").
  DeviceArena(size_t bytes, const std::string& what);
  DeviceArena(const DeviceArena&) = delete;
  DeviceArena& operator=(const DeviceArena&) = delete;
  DeviceArena(DeviceArena&& o) noexcept;
  DeviceArena& operator=(DeviceArena&& o) noexcept;
  ~DeviceArena();

  // The next `bytes` (rounded up to kAlign); vr::Error when the arena is exhausted (a planning bug).
  void* take(size_t bytes);
  template <class T>
  T* take(int64_t n) {
    return static_cast<T*>(take(size_t(n) * sizeof(T)));
  }
  size_t capacity() const { return cap_; }
  size_t used() const { return used_; }

  static size_t round_up(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

 private:
  void release();
  uint8_t* base_ = nullptr;
  size_t cap_ = 0, used_ = 0;
  std::string what_;
};

// Host <-> device copies with a one-line error naming `what`.
void copy_to_device(void* dst, const void* src, size_t bytes, const char* what);
void copy_to_host(void* dst, const void* src, size_t bytes, const char* what);
void copy_on_device(void* dst, const void* src, size_t bytes, const char* what);
// Waits for the device; throws naming `what` if a kernel failed asynchronously.
void device_sync(const char* what);

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
