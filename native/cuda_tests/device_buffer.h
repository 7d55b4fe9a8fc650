// Test helpers for the CUDA kernel tests: device buffers filled from / read back to host vectors, and bf16
// rounding of test data. The tests use only cudaMalloc/cudaMemcpy, so the same files run against the CPU
// emulator (VR_CUDA_EMULATED, where device memory is host memory) and against nvcc kernels on a GPU.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#if defined(VR_CUDA_EMULATED)
#include "cuda_emu/emu_runtime.h"
#else
#include <cuda_runtime_api.h>
#endif

#include "core/dtype.h"
#include "core/error.h"
#include "cuda/kernels/cuda_kernels.h"

namespace vr::test {

inline void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) vr::fail("cuda test: ", what, ": ", cudaGetErrorString(e));
}

template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) { cuda_ok(cudaMalloc(reinterpret_cast<void**>(&p_), bytes()), "cudaMalloc"); }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { cudaFree(p_); }
  T* get() const { return p_; }
  size_t size() const { return n_; }
  void upload(const std::vector<T>& host) {
    if (host.size() != n_) vr::fail("DeviceBuffer::upload: size ", host.size(), " != ", n_);
    cuda_ok(cudaMemcpy(p_, host.data(), bytes(), cudaMemcpyHostToDevice), "upload");
  }
  std::vector<T> download() const {
    cuda_ok(cudaDeviceSynchronize(), "kernel");
    std::vector<T> host(n_);
    cuda_ok(cudaMemcpy(host.data(), p_, bytes(), cudaMemcpyDeviceToHost), "download");
    return host;
  }

 private:
  size_t bytes() const { return (n_ ? n_ : 1) * sizeof(T); }
  size_t n_;
  T* p_ = nullptr;
};

using cuda::bf16;

// fp32 values -> bf16 storage (round to nearest even) and back.
inline std::vector<bf16> to_bf16(const std::vector<float>& v) {
  std::vector<bf16> r(v.size());
  for (size_t i = 0; i < v.size(); i++) r[i].bits = f32_to_bf16(v[i]);
  return r;
}
inline std::vector<float> from_bf16(const std::vector<bf16>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); i++) r[i] = bf16_to_f32(v[i].bits);
  return r;
}
// Rounds fp32 values to the nearest bf16 (what storing them in a bf16 tensor does).
inline std::vector<float> round_bf16(std::vector<float> v) {
  for (float& x : v) x = bf16_to_f32(f32_to_bf16(x));
  return v;
}

// Storage-generic helpers, so one test body covers the fp32 and the bf16 kernels.
template <class S>
std::vector<S> to_storage(const std::vector<float>& v);
template <>
inline std::vector<float> to_storage<float>(const std::vector<float>& v) { return v; }
template <>
inline std::vector<bf16> to_storage<bf16>(const std::vector<float>& v) { return to_bf16(v); }
inline std::vector<float> to_float(const std::vector<float>& v) { return v; }
inline std::vector<float> to_float(const std::vector<bf16>& v) { return from_bf16(v); }
// The values a tensor of storage S holds after being given v.
template <class S>
std::vector<float> stored(const std::vector<float>& v) { return to_float(to_storage<S>(v)); }
template <class S>
const char* storage_name() { return sizeof(S) == 2 ? "bf16" : "f32"; }

}  // namespace vr::test
