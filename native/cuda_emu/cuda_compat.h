// One header for every .cu file: under nvcc it is the CUDA runtime; compiled as C++ it is the CPU emulator
// (cuda_emu.h). It adds the two things whose spelling differs between the two:
//   cuda_launch(kernel, grid, block, smem_bytes, stream, args...)  - kernel<<<grid, block, smem, stream>>>(args)
//     (a function, not <<<>>>, so template kernels need no extra parentheses); returns cudaGetLastError().
//   CUDA_DYNAMIC_SHARED(T, name)  - T* name pointing at the block's dynamic shared memory (16-byte aligned).
//   VR_UNROLL  - `#pragma unroll` for nvcc (keeps small per-thread arrays in registers), nothing for g++.
// cuda_launch lives in an inline namespace named after the build (vr_launch_gpu / vr_launch_emu): its
// instantiations are keyed by parameter types only, so without it the nvcc and the emulator versions of, say,
// cuda_launch<float*, const float*, long> would be one weak symbol with two bodies in a program that holds both
// (the emulator tests link the engine, which holds the nvcc kernels when the CUDA backend is built).
#pragma once
#include <cstddef>
#include <utility>

#if defined(__CUDACC__)

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#define VR_UNROLL _Pragma("unroll")
#define CUDA_DYNAMIC_SHARED(T, name)                              \
  extern __shared__ __align__(16) unsigned char vr_dyn_smem_[];  \
  T* name = reinterpret_cast<T*>(vr_dyn_smem_)

inline namespace vr_launch_gpu {
template <class... KArgs, class... Args>
cudaError_t cuda_launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                        Args&&... args) {
  kernel<<<grid, block, smem, stream>>>(std::forward<Args>(args)...);
  return cudaGetLastError();
}
}  // namespace vr_launch_gpu

#else  // the CPU emulator

#if !defined(VR_CUDA_EMULATED)
#error "a .cu file compiled without nvcc must be built for the emulator: define VR_CUDA_EMULATED"
#endif
#include <memory>
#include <tuple>
#include <type_traits>

#include "cuda_emu/cuda_emu.h"

#define VR_UNROLL
#define CUDA_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(::cudaemu::blk().dyn_smem)

inline namespace vr_launch_emu {
template <class... KArgs, class... Args>
cudaError_t cuda_launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                        Args&&... args) {
  static_assert(sizeof...(KArgs) == sizeof...(Args), "cuda_launch: wrong number of kernel arguments");
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  const bool bad_block = threads == 0 || threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64;
  // gridDim.x < 2^31 (compute capability 3.0+): a block count cast with unsigned(...) past that is refused, as on a GPU.
  const bool bad_grid = grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535 ||
                        grid.z > 65535;
  // Launch errors are reported (and cleared) by cudaGetLastError, as on a GPU.
  if (bad_block || bad_grid) {
    cudaemu::set_error(cudaErrorInvalidConfiguration);
    return cudaGetLastError();
  }
  if (smem > std::min(cudaemu::kernel_max_dyn_smem(reinterpret_cast<const void*>(kernel)),
                      cudaemu::max_dyn_smem_optin())) {  // (a test may have lowered the device's limit since)
    cudaemu::set_error(cudaErrorInvalidValue);  // > 48 KiB needs cudaFuncSetAttribute first
    return cudaGetLastError();
  }
  // Arguments are converted to the kernel's parameter types once, as the launch does (a stream capture keeps
  // these values: a graph replays the launch with them), then copied per thread.
  auto params = std::make_shared<const std::tuple<std::decay_t<KArgs>...>>(std::forward<Args>(args)...);
  const std::function<void()> run = [kernel, params, grid, block, smem] {
    cudaemu::run_grid(grid, block, smem, [&] { std::apply(kernel, *params); }, reinterpret_cast<const void*>(kernel));
  };
  // Now, after the work queued before it on its stream (null stream: blocking streams), or recorded by a capture.
  cudaemu::set_error(cudaemu::launch(stream, run));
  return cudaGetLastError();
}
}  // namespace vr_launch_emu

#endif
