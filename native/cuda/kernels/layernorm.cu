// LayerNorm forward and backward (ops/norm.h), the norm at the end of the BCM / DAC heads.
// Forward and the input gradient: one block per row (two-pass mean and variance, as the CPU code). The weight
// and bias gradients come from a second kernel in which one thread owns one column and walks the rows in order:
// deterministic without atomics or scratch, and cheap for the heads' few hundred rows.
#include "cuda/kernels/common.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void layernorm_forward_kernel(T* out, float* mean, float* rstd, const T* inp, const T* weight,
                                         const T* bias, int64_t C, float eps) {
  using namespace dev;
  __shared__ float scratch[32];
  const int64_t n = blockIdx.x;
  const T* x = inp + n * C;
  T* y = out + n * C;
  float s = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += to_f32(x[c]);
  const float m = block_sum(s, scratch) / float(C);
  float v = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float d = to_f32(x[c]) - m;
    v += d * d;
  }
  const float r = 1.0f / sqrtf(block_sum(v, scratch) / float(C) + eps);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float yv = (to_f32(x[c]) - m) * r * to_f32(weight[c]);
    y[c] = from_f32<T>(bias ? yv + to_f32(bias[c]) : yv);
  }
  if (threadIdx.x == 0) {
    if (mean) mean[n] = m;
    if (rstd) rstd[n] = r;
  }
}

// y = xhat w + b, xhat = (x - m) r:  dx = r (dy w - mean(dy w) - xhat mean(dy w xhat))
template <class T>
__global__ void layernorm_dinp_kernel(T* dinp, const T* dout, const T* inp, const T* weight, const float* mean,
                                      const float* rstd, int64_t C) {
  using namespace dev;
  __shared__ float scratch[32];
  const int64_t n = blockIdx.x;
  const T* x = inp + n * C;
  const T* dy = dout + n * C;
  T* dx = dinp + n * C;
  const float m = mean[n], r = rstd[n];
  float s1 = 0.f, s2 = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float g = to_f32(dy[c]) * to_f32(weight[c]);
    s1 += g;
    s2 += g * (to_f32(x[c]) - m) * r;
  }
  s1 = block_sum(s1, scratch) / float(C);
  s2 = block_sum(s2, scratch) / float(C);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float g = to_f32(dy[c]) * to_f32(weight[c]), xhat = (to_f32(x[c]) - m) * r;
    dx[c] = from_f32<T>(to_f32(dx[c]) + r * (g - s1 - xhat * s2));
  }
}

// dweight[c] += sum_n dy xhat, dbias[c] += sum_n dy: column c's thread adds the rows in order (coalesced: the
// threads of a warp read adjacent columns of one row).
template <class T>
__global__ void layernorm_dparams_kernel(float* dweight, float* dbias, const T* dout, const T* inp,
                                         const float* mean, const float* rstd, int64_t N, int64_t C) {
  using namespace dev;
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float dw = 0.f, db = 0.f;
  for (int64_t n = 0; n < N; n++) {
    const float g = to_f32(dout[n * C + c]);
    dw += g * (to_f32(inp[n * C + c]) - mean[n]) * rstd[n];
    db += g;
  }
  if (dweight) dweight[c] += dw;
  if (dbias) dbias[c] += db;
}

template <class T, class S>
void forward(S* out, float* mean, float* rstd, const S* inp, const S* weight, const S* bias, int64_t N, int64_t C,
             float eps, Stream s) {
  VR_CHECK(N >= 0 && C > 0, "cuda layernorm_forward: bad shape [", N, ", ", C, "]");
  if (N == 0) return;
  VR_CHECK(out && inp && weight, "cuda layernorm_forward: null buffer");
  VR_CHECK(N <= 0x7fffffff, "cuda layernorm_forward: too many rows (", N, ")");
  check_launch(cuda_launch(layernorm_forward_kernel<T>, dim3(unsigned(N)), dim3(kThreads), 0, s, dptr(out), mean,
                           rstd, dptr(inp), dptr(weight), dptr(bias), C, eps),
               "layernorm_forward");
}

template <class T, class S>
void backward(S* dinp, float* dweight, float* dbias, const S* dout, const S* inp, const S* weight, const float* mean,
              const float* rstd, int64_t N, int64_t C, Stream s) {
  VR_CHECK(N >= 0 && C > 0, "cuda layernorm_backward: bad shape [", N, ", ", C, "]");
  if (N == 0 || (!dinp && !dweight && !dbias)) return;
  VR_CHECK(dout && inp && weight && mean && rstd,
           "cuda layernorm_backward: dout, inp, weight, mean and rstd are required");
  VR_CHECK(N <= 0x7fffffff, "cuda layernorm_backward: too many rows (", N, ")");
  if (dinp)
    check_launch(cuda_launch(layernorm_dinp_kernel<T>, dim3(unsigned(N)), dim3(kThreads), 0, s, dptr(dinp),
                             dptr(dout), dptr(inp), dptr(weight), mean, rstd, C),
                 "layernorm_backward dinp");
  if (dweight || dbias)
    check_launch(cuda_launch(layernorm_dparams_kernel<T>, dim3(unsigned((C + kThreads - 1) / kThreads)),
                             dim3(kThreads), 0, s, dweight, dbias, dptr(dout), dptr(inp), mean, rstd, N, C),
                 "layernorm_backward dweight/dbias");
}

}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t N, int64_t C, float eps, Stream s) {
  forward<float>(out, mean, rstd, inp, weight, bias, N, C, eps, s);
}
void layernorm_forward(bf16* out, float* mean, float* rstd, const bf16* inp, const bf16* weight, const bf16* bias,
                       int64_t N, int64_t C, float eps, Stream s) {
  forward<__nv_bfloat16>(out, mean, rstd, inp, weight, bias, N, C, eps, s);
}
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C, Stream s) {
  backward<float>(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C, s);
}
void layernorm_backward(bf16* dinp, float* dweight, float* dbias, const bf16* dout, const bf16* inp,
                        const bf16* weight, const float* mean, const float* rstd, int64_t N, int64_t C, Stream s) {
  backward<__nv_bfloat16>(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C, s);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
