// The training path's small kernels (gpu_train_kernels.h). Same conventions as cuda/kernels.
#include "cuda/kernels/common.cuh"
#include "cuda/kernels/elementwise_vec.cuh"
#include "cuda/model/gpu_train_kernels.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kThreads = 256;

// Block b owns [b * chunk, (b + 1) * chunk): each thread sums its strided elements in fp64, then the block's
// fixed reduction tree.
__global__ void sum_squares_kernel(double* partials, const float* x, int64_t n, int64_t chunk) {
  using namespace dev;
  __shared__ double scratch[32];
  const int64_t i0 = int64_t(blockIdx.x) * chunk, i1 = i0 + chunk < n ? i0 + chunk : n;
  double acc = 0;
  for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) acc += double(x[i]) * double(x[i]);
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

__global__ void sum_groups_add_kernel(float* out, const float* in, int64_t groups, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float acc = out[i];
    for (int64_t g = 0; g < groups; g++) acc += in[g * n + i];
    out[i] = acc;
  }
}

// The 16-byte path (n % 8 == 0 keeps every group's rows aligned; out / in 16-byte aligned): 8 columns per trip,
// each summed over the groups in the same order as above.
__global__ void sum_groups_add_vec_kernel(float* out, const float* in, int64_t groups, int64_t n) {
  for (int64_t k = vec::first(); k < n / vec::kN; k += vec::stride()) {
    float acc[vec::kN];
    vec::load8(out + k * vec::kN, acc);
    for (int64_t g = 0; g < groups; g++) {
      float x[vec::kN];
      vec::load8(in + g * n + k * vec::kN, x);
      VR_UNROLL for (int j = 0; j < vec::kN; j++) acc[j] += x[j];
    }
    vec::store8(out + k * vec::kN, acc);
  }
}

}  // namespace

void sum_groups_add(float* out, const float* in, int64_t groups, int64_t n, Stream s) {
  VR_CHECK(groups >= 0 && n >= 0, "cuda sum_groups_add: bad shape [", groups, ", ", n, "]");
  if (groups == 0 || n == 0) return;
  VR_CHECK(out && in, "cuda sum_groups_add: null buffer");
  if (n % vec::kN == 0 && vec::usable(out, in)) {
    check_launch(cuda_launch(sum_groups_add_vec_kernel, dim3(grid_for(n / vec::kN, kThreads)), dim3(kThreads), 0, s,
                             out, in, groups, n),
                 "sum_groups_add (16-byte)");
    return;
  }
  check_launch(cuda_launch(sum_groups_add_kernel, dim3(grid_for(n, kThreads)), dim3(kThreads), 0, s, out, in, groups,
                           n),
               "sum_groups_add");
}

void sum_squares_partials(double* partials, const float* x, int64_t n, Stream s) {
  VR_CHECK(n >= 0, "cuda sum_squares: negative size ", n);
  VR_CHECK(partials && (n == 0 || x), "cuda sum_squares: null buffer");
  const int64_t chunk = n == 0 ? 1 : (n + kSumSquaresBlocks - 1) / kSumSquaresBlocks;
  check_launch(cuda_launch(sum_squares_kernel, dim3(kSumSquaresBlocks), dim3(kThreads), 0, s, partials, x, n, chunk),
               "sum_squares");
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
