// The model path's seam kernels (model_kernels.h). Same conventions as cuda/kernels: one block per row for the
// norm, grid-stride loops for elementwise work, host-side argument checks with one-line errors.
#include <algorithm>

#include "cuda/kernels/common.cuh"
#include "cuda/kernels/elementwise_vec.cuh"
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

// The 16-byte path (both pointers 16-byte aligned): chunks of 8 elements, then the n % 8 tail one per thread.
template <class To, class From>
__global__ void convert_vec_kernel(To* out, const From* inp, int64_t n) {
  using namespace dev;
  const int64_t chunks = n / vec::kN;
  for (int64_t k = vec::first(); k < chunks; k += vec::stride()) {
    float f[vec::kN];
    vec::load8(inp + k * vec::kN, f);
    vec::store8(out + k * vec::kN, f);
  }
  const int64_t i = chunks * vec::kN + vec::first();
  if (i < n) out[i] = from_f32<To>(to_f32(inp[i]));
}

template <class To, class From>
void launch_convert(To* out, const From* inp, int64_t n, Stream s, const char* name) {
  if (vec::usable(out, inp))
    check_launch(cuda_launch(convert_vec_kernel<To, From>, dim3(grid_for(n / vec::kN, kThreads)), dim3(kThreads), 0, s,
                             out, inp, n),
                 name);
  else
    check_launch(cuda_launch(convert_kernel<To, From>, dim3(grid_for(n, kThreads)), dim3(kThreads), 0, s, out, inp, n),
                 name);
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
  if (norm::rows_vectorizable(C, out, inp, weight)) {
    check_launch(cuda_launch(norm::rmsnorm_forward_vec_kernel<__nv_bfloat16, float>, dim3(unsigned(N)), dim3(threads),
                             0, s, dptr(out), nullptr, inp, weight, C, eps),
                 "rmsnorm_to_bf16 (16-byte)");
    return;
  }
  check_launch(cuda_launch(norm::rmsnorm_forward_kernel<__nv_bfloat16, float>, dim3(unsigned(N)), dim3(threads), 0,
                           s, dptr(out), nullptr, inp, weight, C, eps),
               "rmsnorm_to_bf16");
}

void convert(bf16* out, const float* inp, int64_t n, Stream s) {
  VR_CHECK(n >= 0, "cuda convert: negative size ", n);
  if (n == 0) return;
  VR_CHECK(out && inp, "cuda convert: null buffer");
  launch_convert(dptr(out), inp, n, s, "convert f32->bf16");
}

void convert(float* out, const bf16* inp, int64_t n, Stream s) {
  VR_CHECK(n >= 0, "cuda convert: negative size ", n);
  if (n == 0) return;
  VR_CHECK(out && inp, "cuda convert: null buffer");
  launch_convert(out, dptr(inp), n, s, "convert bf16->f32");
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
