// The model path's seam kernels (model_kernels.h). Same conventions as cuda/kernels: one block per row for the
// norm, grid-stride loops for elementwise work, host-side argument checks with one-line errors.
#include <algorithm>

#include "cuda/kernels/common.cuh"
#include "cuda/kernels/rmsnorm_kernel.cuh"
#include "cuda/model/model_kernels.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kThreads = 256;

template <class To, class From>
__global__ void convert_kernel(To* out, const From* inp, int64_t n) {
  using namespace dev;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_f32<To>(to_f32(inp[i]));
}

}  // namespace

void rmsnorm_to_bf16(bf16* out, const float* inp, const float* weight, int64_t N, int64_t C, float eps, Stream s) {
  VR_CHECK(N >= 0 && C > 0, "cuda rmsnorm_to_bf16: bad shape [", N, ", ", C, "]");
  if (N == 0) return;
  VR_CHECK(out && inp && weight, "cuda rmsnorm_to_bf16: null buffer");
  VR_CHECK(N <= 0x7fffffff, "cuda rmsnorm_to_bf16: too many rows (", N, ")");
  // At least 8 columns per thread (a block of 256 for the 7B's 3584, 160 for the ViT's 1280, one warp for the tiny
  // test models, where a 256-thread block would spend most of its time in the reduction's barriers).
  const int threads = int(std::min<int64_t>(kThreads, std::max<int64_t>(32, (C / 8 + 31) / 32 * 32)));
  check_launch(cuda_launch(norm::rmsnorm_forward_kernel<__nv_bfloat16, float>, dim3(unsigned(N)), dim3(threads), 0,
                           s, dptr(out), nullptr, inp, weight, C, eps),
               "rmsnorm_to_bf16");
}

void convert(bf16* out, const float* inp, int64_t n, Stream s) {
  VR_CHECK(n >= 0, "cuda convert: negative size ", n);
  if (n == 0) return;
  VR_CHECK(out && inp, "cuda convert: null buffer");
  check_launch(cuda_launch(convert_kernel<__nv_bfloat16, float>, dim3(grid_for(n, kThreads)), dim3(kThreads), 0, s,
                           dptr(out), inp, n),
               "convert f32->bf16");
}

void convert(float* out, const bf16* inp, int64_t n, Stream s) {
  VR_CHECK(n >= 0, "cuda convert: negative size ", n);
  if (n == 0) return;
  VR_CHECK(out && inp, "cuda convert: null buffer");
  check_launch(cuda_launch(convert_kernel<float, __nv_bfloat16>, dim3(grid_for(n, kThreads)), dim3(kThreads), 0, s,
                           out, dptr(inp), n),
               "convert bf16->f32");
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
