// The RMSNorm forward kernel, one template for both of its users: cuda/kernels/norm.cu (output, input and
// weight all T, rstd kept for the backward) and the model path's rmsnorm_to_bf16 in cuda/model/model_kernels.cu
// (fp32 residual stream and weight, bf16 output for the GEMMs, no rstd). One block per row; any multiple of 32
// threads (block_sum).
#pragma once
#include "cuda/kernels/common.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {
namespace norm {

// y = w * (x * r), r = 1 / sqrt(mean(x^2) + eps), in fp32 (the CPU's order of operations), stored as Out;
// rstd[row] = r when rstd is given.
template <class Out, class T>
__global__ void rmsnorm_forward_kernel(Out* out, float* rstd, const T* inp, const T* weight, int64_t C, float eps) {
  using namespace dev;
  __shared__ float scratch[32];
  const int64_t n = blockIdx.x;
  const T* x = inp + n * C;
  Out* y = out + n * C;
  float ss = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float v = to_f32(x[c]);
    ss += v * v;
  }
  ss = block_sum(ss, scratch);
  const float r = 1.0f / sqrtf(ss / float(C) + eps);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) y[c] = from_f32<Out>(to_f32(weight[c]) * (to_f32(x[c]) * r));
  if (rstd && threadIdx.x == 0) rstd[n] = r;
}

}  // namespace norm
}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
