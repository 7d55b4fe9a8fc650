// Exact erf GELU (ops/activation.h), the ViT merger's activation (model.md: Linear-GELU(erf)-Linear), forward and
// backward, elementwise in a grid-stride loop. Same formulas as the CPU code:
//   y = 0.5 z (1 + erf(z / sqrt 2)),   dy/dz = 0.5 (1 + erf(z / sqrt 2)) + z exp(-z^2 / 2) / sqrt(2 pi).
// The backward writes (does not accumulate) dinp, so it may alias dout, as on the CPU.
// Both have a 16-byte path (elementwise_vec.cuh) with the same per-element maths, used when every pointer is
// 16-byte aligned.
#include "cuda/kernels/common.cuh"
#include "cuda/kernels/elementwise_vec.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kThreads = 256;
constexpr float kInvSqrt2 = 0.70710678118654752f, kInvSqrt2Pi = 0.39894228040143268f;

// One element each, shared by the scalar and the 16-byte kernels.
__device__ __forceinline__ float gelu_value(float z) { return 0.5f * z * (1.0f + erff(z * kInvSqrt2)); }
__device__ __forceinline__ float gelu_grad(float z, float dy) {
  const float cdf = 0.5f * (1.0f + erff(z * kInvSqrt2));
  const float pdf = expf(-0.5f * z * z) * kInvSqrt2Pi;
  return dy * (cdf + z * pdf);
}

template <class T>
__global__ void gelu_forward_kernel(T* out, const T* inp, int64_t n) {
  using namespace dev;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_f32<T>(gelu_value(to_f32(inp[i])));
}

template <class T>
__global__ void gelu_backward_kernel(T* dinp, const T* dout, const T* inp, int64_t n) {
  using namespace dev;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dinp[i] = from_f32<T>(gelu_grad(to_f32(inp[i]), to_f32(dout[i])));
}

// 16-byte paths: chunks of 8, then the n % 8 tail one element per thread.
template <class T>
__global__ void gelu_forward_vec_kernel(T* out, const T* inp, int64_t n) {
  using namespace dev;
  const int64_t chunks = n / vec::kN;
  for (int64_t k = vec::first(); k < chunks; k += vec::stride()) {
    float z[vec::kN];
    vec::load8(inp + k * vec::kN, z);
    VR_UNROLL for (int j = 0; j < vec::kN; j++) z[j] = gelu_value(z[j]);
    vec::store8(out + k * vec::kN, z);
  }
  const int64_t i = chunks * vec::kN + vec::first();
  if (i < n) out[i] = from_f32<T>(gelu_value(to_f32(inp[i])));
}

template <class T>
__global__ void gelu_backward_vec_kernel(T* dinp, const T* dout, const T* inp, int64_t n) {
  using namespace dev;
  const int64_t chunks = n / vec::kN;
  for (int64_t k = vec::first(); k < chunks; k += vec::stride()) {
    float z[vec::kN], dy[vec::kN];
    vec::load8(inp + k * vec::kN, z);
    vec::load8(dout + k * vec::kN, dy);
    VR_UNROLL for (int j = 0; j < vec::kN; j++) z[j] = gelu_grad(z[j], dy[j]);
    vec::store8(dinp + k * vec::kN, z);
  }
  const int64_t i = chunks * vec::kN + vec::first();
  if (i < n) dinp[i] = from_f32<T>(gelu_grad(to_f32(inp[i]), to_f32(dout[i])));
}

template <class T, class S>
void forward(S* out, const S* inp, int64_t n, Stream s) {
  VR_CHECK(n >= 0, "cuda gelu_forward: negative size ", n);
  if (n == 0) return;
  VR_CHECK(out && inp, "cuda gelu_forward: null buffer");
  if (vec::usable(out, inp)) {
    check_launch(cuda_launch(gelu_forward_vec_kernel<T>, dim3(grid_for(n / vec::kN, kThreads)), dim3(kThreads), 0, s,
                             dptr(out), dptr(inp), n),
                 "gelu_forward (16-byte)");
    return;
  }
  check_launch(cuda_launch(gelu_forward_kernel<T>, dim3(grid_for(n, kThreads)), dim3(kThreads), 0, s, dptr(out),
                           dptr(inp), n),
               "gelu_forward");
}

template <class T, class S>
void backward(S* dinp, const S* dout, const S* inp, int64_t n, Stream s) {
  VR_CHECK(n >= 0, "cuda gelu_backward: negative size ", n);
  if (n == 0) return;
  VR_CHECK(dinp && dout && inp, "cuda gelu_backward: null buffer");
  if (vec::usable(dinp, dout, inp)) {
    check_launch(cuda_launch(gelu_backward_vec_kernel<T>, dim3(grid_for(n / vec::kN, kThreads)), dim3(kThreads), 0,
                             s, dptr(dinp), dptr(dout), dptr(inp), n),
                 "gelu_backward (16-byte)");
    return;
  }
  check_launch(cuda_launch(gelu_backward_kernel<T>, dim3(grid_for(n, kThreads)), dim3(kThreads), 0, s, dptr(dinp),
                           dptr(dout), dptr(inp), n),
               "gelu_backward");
}

}  // namespace

void gelu_forward(float* out, const float* inp, int64_t n, Stream s) { forward<float>(out, inp, n, s); }
void gelu_forward(bf16* out, const bf16* inp, int64_t n, Stream s) { forward<__nv_bfloat16>(out, inp, n, s); }
void gelu_backward(float* dinp, const float* dout, const float* inp, int64_t n, Stream s) {
  backward<float>(dinp, dout, inp, n, s);
}
void gelu_backward(bf16* dinp, const bf16* dout, const bf16* inp, int64_t n, Stream s) {
  backward<__nv_bfloat16>(dinp, dout, inp, n, s);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
