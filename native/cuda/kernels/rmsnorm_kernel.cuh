// The RMSNorm forward kernel, one template for both of its users: cuda/kernels/norm.cu (output, input and
// weight all T, rstd kept for the backward) and the model path's rmsnorm_to_bf16 in cuda/model/model_kernels.cu
// (fp32 residual stream and weight, bf16 output for the GEMMs, no rstd). One block per row; any multiple of 32
// threads (block_sum).
#pragma once
#include "cuda/kernels/common.cuh"
#include "cuda/kernels/elementwise_vec.cuh"

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

// The 16-byte path (C % 8 == 0, out / inp / weight 16-byte aligned, blockDim <= kMaxThreads): thread t loads chunks
// t, t + blockDim, ... of 8 columns; the first kCache of them stay in registers between the sum of squares and the
// output pass (the 7B's 3584 columns are 448 chunks: at most 2 per thread of a 256-thread block). The squares are
// added in the scalar kernel's order (vec::window_put / window_get), and each output element is the scalar
// kernel's expression, so the two paths give the same bits.
constexpr int kMaxThreads = 256;
template <class Out, class T, int kCache = 4>
__global__ void rmsnorm_forward_vec_kernel(Out* out, float* rstd, const T* inp, const T* weight, int64_t C,
                                           float eps) {
  using namespace dev;
  __shared__ float scratch[32];
  __shared__ __align__(16) float win[vec::kN * kMaxThreads];
  const int64_t n = blockIdx.x, chunks = C / vec::kN, B = blockDim.x;
  const T* x = inp + n * C;
  Out* y = out + n * C;
  float xr[kCache][vec::kN];
  float ss = 0.f;
  vec::fold_row<1>(
      win, C,
      [&](int64_t k, int64_t ch, float (&v)[1][vec::kN]) {
        vec::load8(x + ch * vec::kN, v[0]);
        VR_UNROLL for (int kc = 0; kc < kCache; kc++)  // the first kCache chunks stay in registers
          if (kc == k) VR_UNROLL for (int j = 0; j < vec::kN; j++) xr[kc][j] = v[0][j];
      },
      [&](const float (&col)[1]) { ss += col[0] * col[0]; });
  ss = block_sum(ss, scratch);
  const float r = 1.0f / sqrtf(ss / float(C) + eps);
  VR_UNROLL for (int k = 0; k < kCache; k++) {
    const int64_t ch = threadIdx.x + int64_t(k) * B;
    if (ch < chunks) {
      float w[vec::kN];
      vec::load8(weight + ch * vec::kN, w);
      VR_UNROLL for (int j = 0; j < vec::kN; j++) w[j] = w[j] * (xr[k][j] * r);
      vec::store8(y + ch * vec::kN, w);
    }
  }
  for (int64_t ch = threadIdx.x + int64_t(kCache) * B; ch < chunks; ch += B) {
    float v[vec::kN], w[vec::kN];
    vec::load8(x + ch * vec::kN, v);
    vec::load8(weight + ch * vec::kN, w);
    VR_UNROLL for (int j = 0; j < vec::kN; j++) w[j] = w[j] * (v[j] * r);
    vec::store8(y + ch * vec::kN, w);
  }
  if (rstd && threadIdx.x == 0) rstd[n] = r;
}

// Whether a row kernel over [N, C] rows of these buffers may take its 16-byte path.
template <class... P>
inline bool rows_vectorizable(int64_t C, const P*... p) {
  return C % vec::kN == 0 && vec::usable(p...);
}

}  // namespace norm
}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
