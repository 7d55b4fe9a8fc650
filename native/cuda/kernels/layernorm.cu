// LayerNorm forward and backward (ops/norm.h), the norm at the end of the BCM / DAC heads.
// Forward and the input gradient: one block per row (two-pass mean and variance, as the CPU code). The weight
// and bias gradients come from a second kernel in which one thread owns one column and walks the rows in order:
// deterministic without atomics or scratch, and cheap for the heads' few hundred rows.
// 16-byte paths (C % 8 == 0, every row buffer 16-byte aligned): the row kernels move chunks of 8 columns (thread t
// owns chunks t, t + blockDim, ...) with the same per-element maths, their sums folded in the scalar order; the
// parameter-gradient kernel gives a thread 8 adjacent columns, each walked over the rows in the same order. Both
// give the scalar kernels' bits.
#include "cuda/kernels/common.cuh"
#include "cuda/kernels/elementwise_vec.cuh"

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

// The row kernels' 16-byte paths fold their sums in the scalar kernels' order (windows of 8 blockDim columns
// transposed through shared memory: vec::window_put / window_get), so they give the scalar kernels' bits.
template <class T>
__global__ void layernorm_forward_vec_kernel(T* out, float* mean, float* rstd, const T* inp, const T* weight,
                                             const T* bias, int64_t C, float eps) {
  using namespace dev;
  __shared__ float scratch[32];
  __shared__ __align__(16) float win[vec::kN * kThreads];
  const int64_t n = blockIdx.x, chunks = C / vec::kN, B = blockDim.x;
  const T* x = inp + n * C;
  T* y = out + n * C;
  auto load_x = [&](int64_t, int64_t ch, float (&v)[1][vec::kN]) { vec::load8(x + ch * vec::kN, v[0]); };
  float s = 0.f;
  vec::fold_row<1>(win, C, load_x, [&](const float (&col)[1]) { s += col[0]; });
  const float m = block_sum(s, scratch) / float(C);
  float v = 0.f;
  vec::fold_row<1>(win, C, load_x, [&](const float (&col)[1]) {
    const float d = col[0] - m;
    v += d * d;
  });
  const float r = 1.0f / sqrtf(block_sum(v, scratch) / float(C) + eps);
  for (int64_t ch = threadIdx.x; ch < chunks; ch += B) {
    float xv[vec::kN], w[vec::kN], b[vec::kN];
    vec::load8(x + ch * vec::kN, xv);
    vec::load8(weight + ch * vec::kN, w);
    if (bias) vec::load8(bias + ch * vec::kN, b);
    VR_UNROLL for (int j = 0; j < vec::kN; j++) {
      const float yv = (xv[j] - m) * r * w[j];
      xv[j] = bias ? yv + b[j] : yv;
    }
    vec::store8(y + ch * vec::kN, xv);
  }
  if (threadIdx.x == 0) {
    if (mean) mean[n] = m;
    if (rstd) rstd[n] = r;
  }
}

template <class T>
__global__ void layernorm_dinp_vec_kernel(T* dinp, const T* dout, const T* inp, const T* weight, const float* mean,
                                          const float* rstd, int64_t C) {
  using namespace dev;
  __shared__ float scratch[32];
  __shared__ __align__(16) float win[3 * vec::kN * kThreads];  // x, dy, w windows
  const int64_t n = blockIdx.x, chunks = C / vec::kN, B = blockDim.x;
  const T* x = inp + n * C;
  const T* dy = dout + n * C;
  T* dx = dinp + n * C;
  const float m = mean[n], r = rstd[n];
  float s1 = 0.f, s2 = 0.f;
  vec::fold_row<3>(
      win, C,
      [&](int64_t, int64_t ch, float (&v)[3][vec::kN]) {
        vec::load8(x + ch * vec::kN, v[0]);
        vec::load8(dy + ch * vec::kN, v[1]);
        vec::load8(weight + ch * vec::kN, v[2]);
      },
      [&](const float (&col)[3]) {
        const float gw = col[1] * col[2];
        s1 += gw;
        s2 += gw * (col[0] - m) * r;
      });
  s1 = block_sum(s1, scratch) / float(C);
  s2 = block_sum(s2, scratch) / float(C);
  for (int64_t ch = threadIdx.x; ch < chunks; ch += B) {
    float xv[vec::kN], g[vec::kN], w[vec::kN], d[vec::kN];
    vec::load8(x + ch * vec::kN, xv);
    vec::load8(dy + ch * vec::kN, g);
    vec::load8(weight + ch * vec::kN, w);
    vec::load8(dx + ch * vec::kN, d);
    VR_UNROLL for (int j = 0; j < vec::kN; j++) {
      const float gw = g[j] * w[j], xhat = (xv[j] - m) * r;
      d[j] = d[j] + r * (gw - s1 - xhat * s2);
    }
    vec::store8(dx + ch * vec::kN, d);
  }
}

// Thread k owns columns 8k .. 8k + 7 (C % 8 == 0), each summed over the rows in order, as the scalar kernel.
template <class T>
__global__ void layernorm_dparams_vec_kernel(float* dweight, float* dbias, const T* dout, const T* inp,
                                             const float* mean, const float* rstd, int64_t N, int64_t C) {
  using namespace dev;
  const int64_t c = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * vec::kN;
  if (c >= C) return;
  float dw[vec::kN] = {}, db[vec::kN] = {};
  for (int64_t n = 0; n < N; n++) {
    float g[vec::kN], xv[vec::kN];
    vec::load8(dout + n * C + c, g);
    vec::load8(inp + n * C + c, xv);
    const float m = mean[n], r = rstd[n];
    VR_UNROLL for (int j = 0; j < vec::kN; j++) {
      dw[j] += g[j] * (xv[j] - m) * r;
      db[j] += g[j];
    }
  }
  float a[vec::kN];
  if (dweight) {
    vec::load8(dweight + c, a);
    VR_UNROLL for (int j = 0; j < vec::kN; j++) a[j] += dw[j];
    vec::store8(dweight + c, a);
  }
  if (dbias) {
    vec::load8(dbias + c, a);
    VR_UNROLL for (int j = 0; j < vec::kN; j++) a[j] += db[j];
    vec::store8(dbias + c, a);
  }
}

template <class T, class S>
void forward(S* out, float* mean, float* rstd, const S* inp, const S* weight, const S* bias, int64_t N, int64_t C,
             float eps, Stream s) {
  VR_CHECK(N >= 0 && C > 0, "cuda layernorm_forward: bad shape [", N, ", ", C, "]");
  if (N == 0) return;
  VR_CHECK(out && inp && weight, "cuda layernorm_forward: null buffer");
  VR_CHECK(N <= 0x7fffffff, "cuda layernorm_forward: too many rows (", N, ")");
  if (C % vec::kN == 0 && vec::usable(out, inp, weight, bias)) {
    check_launch(cuda_launch(layernorm_forward_vec_kernel<T>, dim3(unsigned(N)), dim3(kThreads), 0, s, dptr(out),
                             mean, rstd, dptr(inp), dptr(weight), dptr(bias), C, eps),
                 "layernorm_forward (16-byte)");
    return;
  }
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
  if (C % vec::kN == 0 && vec::usable(dinp, dweight, dbias, dout, inp, weight)) {
    if (dinp)
      check_launch(cuda_launch(layernorm_dinp_vec_kernel<T>, dim3(unsigned(N)), dim3(kThreads), 0, s, dptr(dinp),
                               dptr(dout), dptr(inp), dptr(weight), mean, rstd, C),
                   "layernorm_backward dinp (16-byte)");
    if (dweight || dbias)
      check_launch(cuda_launch(layernorm_dparams_vec_kernel<T>, dim3(unsigned((C / vec::kN + kThreads - 1) / kThreads)),
                               dim3(kThreads), 0, s, dweight, dbias, dptr(dout), dptr(inp), mean, rstd, N, C),
                   "layernorm_backward dweight/dbias (16-byte)");
    return;
  }
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
