// One device allocation carved into aligned pieces: the model's weights (and a session's KV cache) live in a
// few large cudaMallocs instead of hundreds of small ones. A failed allocation is a one-line vr::Error naming
// the bytes asked for and the bytes free on the device.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

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
  // AddressSanitizer builds of the emulator tests give every piece its own exact-size allocation, so an access
  // past a piece's end is caught instead of landing in its neighbour (the size plan is still checked).
  std::vector<void*> separate_;
};

// Free device memory in bytes, or -1 when it cannot be known (the emulator without VREFLECT_CUDA_EMU_MEMORY).
int64_t device_free_bytes();

// Sizes an arena before it exists: the same take() calls as on a DeviceArena, with its rounding, so a buffer
// list is written once - carve it into a sizer, make the arena of sizer.bytes(), carve it again into the arena.
class ArenaSizer {
 public:
  void* take(size_t bytes) {
    bytes_ += DeviceArena::round_up(bytes);
    return nullptr;
  }
  template <class T>
  T* take(int64_t n) {
    take(size_t(n) * sizeof(T));
    return nullptr;
  }
  size_t bytes() const { return bytes_; }

 private:
  size_t bytes_ = 0;
};

// Copies ordered on stream s (after the work already queued there), with a one-line error naming `what`.
// copy_to_device may return before the copy ran, but never before `src` (pageable host memory) was read, so the
// host buffer may be freed at once; copy_to_host returns with the data in `dst`.
void copy_to_device(void* dst, const void* src, size_t bytes, const char* what, Stream s = nullptr);
void copy_to_host(void* dst, const void* src, size_t bytes, const char* what, Stream s = nullptr);
void copy_on_device(void* dst, const void* src, size_t bytes, const char* what, Stream s = nullptr);
// Waits for the device; throws naming `what` if a kernel failed asynchronously.
void device_sync(const char* what);

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
