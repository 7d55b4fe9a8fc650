#include "cuda/model/pinned_buffer.h"

#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "cuda/model/cuda_runtime.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

PinnedBuffer::PinnedBuffer(size_t bytes, const char* what) : bytes_(bytes) {
  if (bytes == 0) return;
  const cudaError_t e = cudaHostAlloc(&p_, bytes, cudaHostAllocDefault);
  if (e == cudaSuccess && p_) {
    pinned_ = true;
    return;
  }
  cudaGetLastError();  // not sticky: the fallback below is the answer
  p_ = nullptr;
  std::fprintf(stderr, "vreflect: pinning %zu bytes of host memory for %s failed (%s): using pageable memory, "
               "host-device copies are synchronous and slower\n", bytes, what, cudaGetErrorString(e));
  if (posix_memalign(&p_, 4096, bytes) != 0) p_ = nullptr;
  VR_CHECK(p_, "cuda: cannot allocate ", bytes, " bytes of host memory for ", what);
}

PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& o) noexcept {
  if (this != &o) {
    release();
    p_ = o.p_;
    bytes_ = o.bytes_;
    pinned_ = o.pinned_;
    o.p_ = nullptr;
    o.bytes_ = 0;
    o.pinned_ = false;
  }
  return *this;
}

void PinnedBuffer::release() {
  if (!p_) return;
  if (pinned_) cudaFreeHost(p_);
  else std::free(p_);
  p_ = nullptr;
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
