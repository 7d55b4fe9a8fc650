#include "cuda/model/device_arena.h"

#include <utility>

#include "core/error.h"
#include "cuda/model/cuda_runtime.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

#if defined(VR_CUDA_EMULATED) && defined(__SANITIZE_ADDRESS__)
constexpr bool kSeparatePieces = true;
#else
constexpr bool kSeparatePieces = false;
#endif

std::string mib(size_t bytes) { return std::to_string((bytes + (size_t(1) << 19)) >> 20) + " MiB"; }

// Free device memory as text, for the out-of-memory message. The emulator's "device" is host memory, whose size
// is known only when VREFLECT_CUDA_EMU_MEMORY sets one.
std::string free_text() {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
    cudaGetLastError();
#if defined(VR_CUDA_EMULATED)
    return "unknown (CPU emulator)";
#else
    return "unknown";
#endif
  }
  return std::to_string(free_b) + " bytes (" + mib(free_b) + ") of " + mib(total_b);
}

}  // namespace

int64_t device_free_bytes() {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
    cudaGetLastError();
    return -1;
  }
  return int64_t(free_b);
}

DeviceArena::DeviceArena(size_t bytes, const std::string& what) : what_(what) {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
  if (e != cudaSuccess || !p) {
    cudaGetLastError();  // clear the sticky error so later launches report their own
    fail("cuda: cannot allocate ", what, ": ", bytes, " bytes (", mib(bytes), ") asked, ", free_text(), " free (",
         cudaGetErrorString(e), ")");
  }
  base_ = static_cast<uint8_t*>(p);
  cap_ = bytes;
}

DeviceArena::DeviceArena(DeviceArena&& o) noexcept
    : base_(std::exchange(o.base_, nullptr)), cap_(std::exchange(o.cap_, 0)), used_(std::exchange(o.used_, 0)),
      what_(std::move(o.what_)), separate_(std::move(o.separate_)) {
  o.separate_.clear();
}

DeviceArena& DeviceArena::operator=(DeviceArena&& o) noexcept {
  if (this != &o) {
    release();
    base_ = std::exchange(o.base_, nullptr);
    cap_ = std::exchange(o.cap_, 0);
    used_ = std::exchange(o.used_, 0);
    what_ = std::move(o.what_);
    separate_ = std::move(o.separate_);
    o.separate_.clear();
  }
  return *this;
}

DeviceArena::~DeviceArena() { release(); }

void DeviceArena::release() {
  if (base_) cudaFree(base_);
  base_ = nullptr;
  for (void* p : separate_) cudaFree(p);
  separate_.clear();
}

void* DeviceArena::take(size_t bytes) {
  const size_t n = round_up(bytes);
  VR_CHECK(base_ && used_ + n <= cap_, "cuda: ", what_, " arena exhausted (", used_, " + ", n, " > ", cap_,
           " bytes): the size plan is wrong");
  void* p = base_ + used_;
  used_ += n;
  if (kSeparatePieces) {
    VR_CHECK(cudaMalloc(&p, bytes ? bytes : 1) == cudaSuccess, "cuda: ", what_, ": piece allocation failed");
    separate_.push_back(p);
  }
  return p;
}

void copy_to_device(void* dst, const void* src, size_t bytes, const char* what, Stream s) {
  if (bytes == 0) return;
  const cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s);
  if (e != cudaSuccess) fail("cuda: upload of ", what, " (", bytes, " bytes) failed: ", cudaGetErrorString(e));
}

void copy_to_host(void* dst, const void* src, size_t bytes, const char* what, Stream s) {
  if (bytes == 0) return;
  cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s);
  if (e == cudaSuccess) e = cudaStreamSynchronize(s);
  if (e != cudaSuccess) fail("cuda: download of ", what, " (", bytes, " bytes) failed: ", cudaGetErrorString(e));
}

void copy_on_device(void* dst, const void* src, size_t bytes, const char* what, Stream s) {
  if (bytes == 0 || dst == src) return;
  const cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s);
  if (e != cudaSuccess) fail("cuda: device copy of ", what, " (", bytes, " bytes) failed: ", cudaGetErrorString(e));
}

void device_sync(const char* what) {
  const cudaError_t e = cudaDeviceSynchronize();
  if (e != cudaSuccess) fail("cuda: ", what, " failed: ", cudaGetErrorString(e));
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
