// Shared pieces of the CUDA kernels: storage <-> fp32 conversion, warp and block reductions, and the host-side
// launch check. Included by every .cu in this folder (nvcc or the CPU emulator, see cuda_emu/cuda_compat.h).
#pragma once
#include <cstdint>

#include "core/error.h"
#include "cuda/kernels/cuda_kernels.h"
#include "cuda_emu/cuda_compat.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {
namespace dev {

constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
template <class T>
__device__ __forceinline__ T from_f32(float x);
template <>
__device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <>  // round to nearest even, as vr::f32_to_bf16 and torch's .to(bfloat16)
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) { return __float2bfloat16(x); }

// SwiGLU of one element, silu(g) * u = g * sigmoid(g) * u. swiglu.cu and the decode MLP's fused gate / up pass
// (gemv.cu) both use it, so the fused pass gives the unfused kernels' values bit for bit.
__device__ __forceinline__ float sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }
__device__ __forceinline__ float swiglu_value(float g, float u) { return g * sigmoid(g) * u; }

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {  // fp64 loss values (latent_losses.cu)
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, 1-D blocks); every thread gets the result.
// `scratch` is a __shared__ F[32] (float, or double for the fp64 loss values); the trailing barrier lets the
// caller reuse it at once.
template <class F>
__device__ __forceinline__ F block_sum(F v, F* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = warp_sum(lane < nwarps ? scratch[lane] : F(0));
  __syncthreads();
  return v;
}

// (max, sum of exp(x - max)) pairs merged, for online softmax statistics; -inf max means "empty".
__device__ __forceinline__ void softmax_merge(float& m, float& s, float m2, float s2) {
  const float mn = fmaxf(m, m2);
  if (mn == -INFINITY) return;
  s = (m == -INFINITY ? 0.f : s * expf(m - mn)) + (m2 == -INFINITY ? 0.f : s2 * expf(m2 - mn));
  m = mn;
}

}  // namespace dev

// API storage types -> device types.
inline float* dptr(float* p) { return p; }
inline const float* dptr(const float* p) { return p; }
inline __nv_bfloat16* dptr(bf16* p) { return reinterpret_cast<__nv_bfloat16*>(p); }
inline const __nv_bfloat16* dptr(const bf16* p) { return reinterpret_cast<const __nv_bfloat16*>(p); }

// Throws vr::Error naming the kernel when a launch (or an earlier asynchronous error) failed.
inline void check_launch(cudaError_t e, const char* kernel) {
  if (e != cudaSuccess) vr::fail("cuda: ", kernel, " failed: ", cudaGetErrorString(e));
}

// Stream-ordered device scratch of `count` T (cudaMallocAsync), freed stream-ordered on every exit, including a
// throw from a failed launch. `what` names the op in the allocation error.
template <class T>
struct StreamScratch {
  T* p = nullptr;
  Stream s;
  StreamScratch(size_t count, Stream st, const char* what) : s(st) {
    check_launch(cudaMallocAsync(&p, sizeof(T) * count, s), what);
  }
  ~StreamScratch() {
    if (p) cudaFreeAsync(p, s);
  }
  StreamScratch(const StreamScratch&) = delete;
  StreamScratch& operator=(const StreamScratch&) = delete;
};

// Blocks for a grid-stride elementwise kernel over n items.
inline unsigned grid_for(int64_t n, int threads, int64_t max_blocks = 4096) {
  const int64_t b = (n + threads - 1) / threads;
  return unsigned(b < 1 ? 1 : b > max_blocks ? max_blocks : b);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
