// SwiGLU (ops/activation.h): out = silu(gate) * up, and its backward, elementwise in a grid-stride loop.
// The backward writes (not accumulates) dgate and dup, so they may alias dout, as on the CPU.
// Each has a 16-byte path (elementwise_vec.cuh: 8 elements per trip, then the n % 8 tail one per thread) with the
// same per-element maths, used when every pointer is 16-byte aligned.
#include "cuda/kernels/common.cuh"
#include "cuda/kernels/elementwise_vec.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void swiglu_forward_kernel(T* out, const T* gate, const T* up, int64_t n) {
  using namespace dev;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = to_f32(gate[i]);
    out[i] = from_f32<T>(swiglu_value(g, to_f32(up[i])));
  }
}

// d/dg [g s(g)] = s + g s (1 - s); one element, shared by both backward kernels.
__device__ __forceinline__ void swiglu_grads(float g, float u, float dy, float& dg, float& du) {
  using namespace dev;
  const float s = sigmoid(g), silu = g * s;
  dg = dy * u * (s + silu * (1.0f - s));
  du = dy * silu;
}

template <class T>
__global__ void swiglu_backward_kernel(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n) {
  using namespace dev;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float dg, du;
    swiglu_grads(to_f32(gate[i]), to_f32(up[i]), to_f32(dout[i]), dg, du);
    if (dgate) dgate[i] = from_f32<T>(dg);
    if (dup) dup[i] = from_f32<T>(du);
  }
}

// The 16-byte paths: chunks of 8, then the tail elements (n % 8), one per thread of the first block(s).
template <class T>
__global__ void swiglu_forward_vec_kernel(T* out, const T* gate, const T* up, int64_t n) {
  using namespace dev;
  const int64_t chunks = n / vec::kN;
  for (int64_t k = vec::first(); k < chunks; k += vec::stride()) {
    float g[vec::kN], u[vec::kN], y[vec::kN];
    vec::load8(gate + k * vec::kN, g);
    vec::load8(up + k * vec::kN, u);
    VR_UNROLL for (int j = 0; j < vec::kN; j++) y[j] = swiglu_value(g[j], u[j]);
    vec::store8(out + k * vec::kN, y);
  }
  const int64_t i = chunks * vec::kN + vec::first();
  if (i < n) out[i] = from_f32<T>(swiglu_value(to_f32(gate[i]), to_f32(up[i])));
}

template <class T>
__global__ void swiglu_backward_vec_kernel(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n) {
  using namespace dev;
  const int64_t chunks = n / vec::kN;
  for (int64_t k = vec::first(); k < chunks; k += vec::stride()) {
    float g[vec::kN], u[vec::kN], dy[vec::kN], dg[vec::kN], du[vec::kN];
    vec::load8(gate + k * vec::kN, g);
    vec::load8(up + k * vec::kN, u);
    vec::load8(dout + k * vec::kN, dy);
    VR_UNROLL for (int j = 0; j < vec::kN; j++) swiglu_grads(g[j], u[j], dy[j], dg[j], du[j]);
    if (dgate) vec::store8(dgate + k * vec::kN, dg);
    if (dup) vec::store8(dup + k * vec::kN, du);
  }
  const int64_t i = chunks * vec::kN + vec::first();
  if (i < n) {
    float dg, du;
    swiglu_grads(to_f32(gate[i]), to_f32(up[i]), to_f32(dout[i]), dg, du);
    if (dgate) dgate[i] = from_f32<T>(dg);
    if (dup) dup[i] = from_f32<T>(du);
  }
}

template <class T, class S>
void forward(S* out, const S* gate, const S* up, int64_t n, Stream s) {
  VR_CHECK(n >= 0, "cuda swiglu_forward: negative size ", n);
  if (n == 0) return;
  VR_CHECK(out && gate && up, "cuda swiglu_forward: null buffer");
  if (vec::usable(out, gate, up)) {
    check_launch(cuda_launch(swiglu_forward_vec_kernel<T>, dim3(grid_for(n / vec::kN, kThreads)), dim3(kThreads), 0,
                             s, dptr(out), dptr(gate), dptr(up), n),
                 "swiglu_forward (16-byte)");
    return;
  }
  check_launch(cuda_launch(swiglu_forward_kernel<T>, dim3(grid_for(n, kThreads)), dim3(kThreads), 0, s, dptr(out),
                           dptr(gate), dptr(up), n),
               "swiglu_forward");
}

template <class T, class S>
void backward(S* dgate, S* dup, const S* dout, const S* gate, const S* up, int64_t n, Stream s) {
  VR_CHECK(n >= 0, "cuda swiglu_backward: negative size ", n);
  if (n == 0 || (!dgate && !dup)) return;
  VR_CHECK(dout && gate && up, "cuda swiglu_backward: dout, gate and up are required");
  if (vec::usable(dgate, dup, dout, gate, up)) {
    check_launch(cuda_launch(swiglu_backward_vec_kernel<T>, dim3(grid_for(n / vec::kN, kThreads)), dim3(kThreads), 0,
                             s, dptr(dgate), dptr(dup), dptr(dout), dptr(gate), dptr(up), n),
                 "swiglu_backward (16-byte)");
    return;
  }
  check_launch(cuda_launch(swiglu_backward_kernel<T>, dim3(grid_for(n, kThreads)), dim3(kThreads), 0, s,
                           dptr(dgate), dptr(dup), dptr(dout), dptr(gate), dptr(up), n),
               "swiglu_backward");
}

}  // namespace

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n, Stream s) {
  forward<float>(out, gate, up, n, s);
}
void swiglu_forward(bf16* out, const bf16* gate, const bf16* up, int64_t n, Stream s) {
  forward<__nv_bfloat16>(out, gate, up, n, s);
}
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n,
                     Stream s) {
  backward<float>(dgate, dup, dout, gate, up, n, s);
}
void swiglu_backward(bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate, const bf16* up, int64_t n,
                     Stream s) {
  backward<__nv_bfloat16>(dgate, dup, dout, gate, up, n, s);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
