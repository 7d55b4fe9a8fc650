// SwiGLU (ops/activation.h): out = silu(gate) * up, and its backward, elementwise in a grid-stride loop.
// The backward writes (not accumulates) dgate and dup, so they may alias dout, as on the CPU.
#include "cuda/kernels/common.cuh"

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

// d/dg [g s(g)] = s + g s (1 - s)
template <class T>
__global__ void swiglu_backward_kernel(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n) {
  using namespace dev;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = to_f32(gate[i]), u = to_f32(up[i]), dy = to_f32(dout[i]);
    const float s = sigmoid(g), silu = g * s;
    if (dgate) dgate[i] = from_f32<T>(dy * u * (s + silu * (1.0f - s)));
    if (dup) dup[i] = from_f32<T>(dy * silu);
  }
}

template <class T, class S>
void forward(S* out, const S* gate, const S* up, int64_t n, Stream s) {
  VR_CHECK(n >= 0, "cuda swiglu_forward: negative size ", n);
  if (n == 0) return;
  VR_CHECK(out && gate && up, "cuda swiglu_forward: null buffer");
  check_launch(cuda_launch(swiglu_forward_kernel<T>, dim3(grid_for(n, kThreads)), dim3(kThreads), 0, s, dptr(out),
                           dptr(gate), dptr(up), n),
               "swiglu_forward");
}

template <class T, class S>
void backward(S* dgate, S* dup, const S* dout, const S* gate, const S* up, int64_t n, Stream s) {
  VR_CHECK(n >= 0, "cuda swiglu_backward: negative size ", n);
  if (n == 0 || (!dgate && !dup)) return;
  VR_CHECK(dout && gate && up, "cuda swiglu_backward: dout, gate and up are required");
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
