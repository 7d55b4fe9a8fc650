// CUDA-on-CPU emulator, part 3: the host runtime API subset our launchers use. "Device" memory is host
// memory; streams are ignored (every launch runs to completion before it returns); errors are sticky per OS
// thread as in the CUDA runtime. The launch itself is cuda_launch() in cuda_compat.h.
#pragma once
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include <driver_types.h>  // cudaError_t, cudaStream_t, cudaMemcpyKind, cudaFuncAttribute from the toolkit

namespace cudaemu {

inline thread_local cudaError_t last_error = cudaSuccess;
inline cudaError_t set_error(cudaError_t e) {
  if (e != cudaSuccess) last_error = e;
  return e;
}

// Per-kernel opt-in for more than 48 KiB of dynamic shared memory, as cudaFuncSetAttribute does on a GPU.
// A launch asking for more than 48 KiB without it fails, so the emulator catches the classic omission.
constexpr size_t kDefaultDynSmem = 48 * 1024, kMaxDynSmem = 227 * 1024;
inline std::mutex attr_mutex;
inline std::map<const void*, size_t> max_dyn_smem;
inline size_t kernel_max_dyn_smem(const void* k) {
  std::lock_guard<std::mutex> lock(attr_mutex);
  auto it = max_dyn_smem.find(k);
  return it == max_dyn_smem.end() ? kDefaultDynSmem : it->second;
}

}  // namespace cudaemu

inline cudaError_t cudaGetLastError() {
  const cudaError_t e = cudaemu::last_error;
  cudaemu::last_error = cudaSuccess;
  return e;
}
inline cudaError_t cudaPeekAtLastError() { return cudaemu::last_error; }
inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    default: return "cuda_emu error";
  }
}

namespace cudaemu {
// The emulated device's memory size: VREFLECT_CUDA_EMU_MEMORY=<bytes> makes cudaMalloc fail (out of memory) past
// that many live bytes, so the out-of-memory paths can be tested; unset: no limit but the host's.
inline size_t memory_limit() {
  static const size_t limit = [] {
    const char* s = std::getenv("VREFLECT_CUDA_EMU_MEMORY");
    return s && *s ? size_t(std::strtoull(s, nullptr, 10)) : size_t(0);
  }();
  return limit;
}
inline std::mutex mem_mutex;
inline std::map<void*, size_t> live_allocations;
inline size_t live_bytes = 0;
}  // namespace cudaemu

// 256-byte aligned like cudaMalloc, and exactly `bytes` long, so AddressSanitizer builds of the emulator tests
// catch a kernel reading or writing past the end of a buffer.
inline cudaError_t cudaMalloc(void** p, size_t bytes) {
  const size_t n = bytes ? bytes : 1;
  std::lock_guard<std::mutex> lock(cudaemu::mem_mutex);
  const size_t limit = cudaemu::memory_limit();
  *p = nullptr;
  if (limit == 0 || n <= limit - std::min(limit, cudaemu::live_bytes)) {
    if (posix_memalign(p, 256, n) != 0) *p = nullptr;
  }
  if (*p) {
    cudaemu::live_allocations[*p] = n;
    cudaemu::live_bytes += n;
  }
  return cudaemu::set_error(*p ? cudaSuccess : cudaErrorMemoryAllocation);
}
template <class T>
cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
inline cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(cudaemu::mem_mutex);
    auto it = cudaemu::live_allocations.find(p);
    if (it != cudaemu::live_allocations.end()) {
      cudaemu::live_bytes -= it->second;
      cudaemu::live_allocations.erase(it);
    }
  }
  std::free(p);
  return cudaSuccess;
}
// Free and total bytes of the emulated device: only known when VREFLECT_CUDA_EMU_MEMORY sets a size.
inline cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  std::lock_guard<std::mutex> lock(cudaemu::mem_mutex);
  const size_t limit = cudaemu::memory_limit();
  if (limit == 0) return cudaemu::set_error(cudaErrorInvalidValue);
  *total_bytes = limit;
  *free_bytes = limit - std::min(limit, cudaemu::live_bytes);
  return cudaSuccess;
}
template <class T>
cudaError_t cudaMallocAsync(T** p, size_t bytes, cudaStream_t) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
inline cudaError_t cudaFreeAsync(void* p, cudaStream_t) { return cudaFree(p); }
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind k, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, k);
}
inline cudaError_t cudaMemset(void* p, int v, size_t bytes) {
  if (bytes) std::memset(p, v, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* p, int v, size_t bytes, cudaStream_t) { return cudaMemset(p, v, bytes); }
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }

// Page-locked host memory: plain host memory here. VREFLECT_CUDA_EMU_NO_PINNED=1 makes cudaHostAlloc fail (out of
// memory), so the pageable fallback of the callers can be tested.
inline cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned int) {
  const char* no = std::getenv("VREFLECT_CUDA_EMU_NO_PINNED");
  *p = nullptr;
  if (!(no && *no && *no != '0') && posix_memalign(p, 4096, bytes ? bytes : 1) != 0) *p = nullptr;
  return cudaemu::set_error(*p ? cudaSuccess : cudaErrorMemoryAllocation);
}
inline cudaError_t cudaFreeHost(void* p) {
  std::free(p);
  return cudaSuccess;
}

// Streams and events: every launch and copy has finished when it returns, so a stream is a token, recording an
// event marks nothing, and waiting on either returns at once. Distinct non-null handles, as the runtime gives.
namespace cudaemu {
inline void* new_handle() { return std::malloc(1); }
}  // namespace cudaemu
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int) {
  *s = static_cast<cudaStream_t>(cudaemu::new_handle());
  return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
  std::free(s);
  return cudaSuccess;
}
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int) {
  *e = static_cast<cudaEvent_t>(cudaemu::new_handle());
  return cudaSuccess;
}
inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
  std::free(e);
  return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
inline cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned int) { return cudaSuccess; }

template <class F>
cudaError_t cudaFuncSetAttribute(F* kernel, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess;
  if (value < 0 || size_t(value) > cudaemu::kMaxDynSmem) return cudaemu::set_error(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(cudaemu::attr_mutex);
  cudaemu::max_dyn_smem[reinterpret_cast<const void*>(kernel)] = size_t(value);
  return cudaSuccess;
}
