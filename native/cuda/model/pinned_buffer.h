// Page-locked (pinned) host memory for asynchronous copies: cudaHostAlloc / cudaFreeHost, falling back to
// pageable memory with one line on stderr when pinning fails (the copies still work, synchronously and slower),
// so a host short of lockable memory degrades instead of refusing to train.
#pragma once
#include <cstddef>

#include "cuda/kernels/cuda_kernels.h"  // VR_CUDA_ABI

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  // `what` names the buffer in the fallback's log line and in the error when even pageable memory is refused.
  PinnedBuffer(size_t bytes, const char* what);
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  PinnedBuffer(PinnedBuffer&& o) noexcept { *this = static_cast<PinnedBuffer&&>(o); }
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept;
  ~PinnedBuffer() { release(); }

  void* data() const { return p_; }
  template <class T>
  T* as(size_t byte_offset = 0) const {
    return reinterpret_cast<T*>(static_cast<char*>(p_) + byte_offset);
  }
  size_t bytes() const { return bytes_; }
  bool pinned() const { return pinned_; }

 private:
  void release();
  void* p_ = nullptr;
  size_t bytes_ = 0;
  bool pinned_ = false;
};

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
