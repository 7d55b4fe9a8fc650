// CUDA-on-CPU emulator, part 3: the host runtime API subset our launchers use. "Device" memory is host
// memory; every kernel launch runs to completion before it returns, copies and memsets on created streams are
// deferred (emu_streams.h); errors are sticky per OS thread as in the CUDA runtime. The launch itself is
// cuda_launch() in cuda_compat.h.
#pragma once
#include <algorithm>
#include <atomic>
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
// The emulated device's opt-in ceiling per block (what cudaFuncSetAttribute accepts, a launch may use, and
// cudaDeviceGetAttribute(cudaDevAttrMaxSharedMemoryPerBlockOptin) says): the H100's 227 KiB unless
// CUDAEMU_MAX_DYN_SMEM_KIB names another GPU's (163: A100, 99: sm_86 / sm_89), or a test sets one with
// set_max_dyn_smem_optin, so the tests can show which launches a smaller GPU would refuse and what a per-device
// choice picks there.
inline std::atomic<size_t> max_dyn_smem_override{0};  // 0: CUDAEMU_MAX_DYN_SMEM_KIB / 227 KiB
inline size_t max_dyn_smem_optin() {
  if (const size_t o = max_dyn_smem_override.load(std::memory_order_relaxed)) return o;
  static const size_t bytes = [] {
    const char* e = std::getenv("CUDAEMU_MAX_DYN_SMEM_KIB");
    const long kib = e && *e ? std::atol(e) : 0;
    return kib >= 48 && size_t(kib) * 1024 <= kMaxDynSmem ? size_t(kib) * 1024 : kMaxDynSmem;
  }();
  return bytes;
}
// Tests: the device now allows `bytes` (48 KiB .. 227 KiB; 0: back to the environment's / the default).
inline void set_max_dyn_smem_optin(size_t bytes) {
  max_dyn_smem_override.store(bytes >= kDefaultDynSmem && bytes <= kMaxDynSmem ? bytes : 0, std::memory_order_relaxed);
}
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
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnmatched: return "capture was not initiated in this stream";
    case cudaErrorStreamCaptureIsolation: return "operation would make the capture depend on work outside it";
    case cudaErrorStreamCaptureImplicit:
      return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorCapturedEvent: return "operation not permitted on an event last recorded in a capturing stream";
    case cudaErrorNotSupported: return "operation not supported";
    default: return "cuda_emu error";
  }
}

// Streams, events, copies and pinned memory (deferred as late as CUDA allows), stream capture and graphs.
#include "cuda_emu/emu_streams.h"
#include "cuda_emu/emu_graphs.h"

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
  *p = nullptr;
  if (const cudaError_t e = cudaemu::capture_forbidden()) return e;  // not stream-ordered: not in a graph
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
  if (const cudaError_t e = cudaemu::capture_forbidden()) return e;  // it synchronises: forbidden in a capture
  cudaemu::drain_all();  // cudaFree synchronises: queued copies into / out of the block run first
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

// One device, 0. Attributes: only the opt-in shared memory per block (max_dyn_smem_optin) is modelled; any other is
// cudaErrorInvalidValue, so code that needs more must say so here rather than read a made-up value.
inline cudaError_t cudaGetDevice(int* dev) {
  *dev = 0;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int dev) {
  if (dev != 0 || attr != cudaDevAttrMaxSharedMemoryPerBlockOptin) return cudaemu::set_error(cudaErrorInvalidValue);
  *value = int(cudaemu::max_dyn_smem_optin());
  return cudaSuccess;
}

template <class F>
cudaError_t cudaFuncSetAttribute(F* kernel, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess;
  if (value < 0 || size_t(value) > cudaemu::max_dyn_smem_optin()) return cudaemu::set_error(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(cudaemu::attr_mutex);
  cudaemu::max_dyn_smem[reinterpret_cast<const void*>(kernel)] = size_t(value);
  return cudaSuccess;
}
