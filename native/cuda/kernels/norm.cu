// RMSNorm forward and backward (ops/norm.h). One block per row for the forward; the backward walks rows in a
// grid-stride loop so each block can sum its rows' weight gradient in shared memory before one atomicAdd per
// column.
#include "cuda/kernels/common.cuh"
#include "cuda/kernels/rmsnorm_kernel.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxBackwardBlocks = 256;
// The backward keeps C fp32 partial sums in dynamic shared memory beside its static 32-float scratch; without an
// opt-in a block gets 48 KiB for both together (the emulator checks only the dynamic part), so C = 12288 would
// fail to launch on a GPU: 12256 is the largest C that fits (the 7B's 3584 and the ViT's 1280 are far below).
constexpr int64_t kMaxC = (48 * 1024 - 32 * int64_t(sizeof(float))) / int64_t(sizeof(float));
static_assert(kMaxC == 12256, "rmsnorm backward: 48 KiB minus the block_sum scratch");

// y = w x r:  dx = r (w dy) - r^3/C x sum(w dy x),  dw = sum_rows dy x r
template <class T>
__global__ void rmsnorm_backward_kernel(T* dinp, float* dweight, const T* dout, const T* inp, const T* weight,
                                        const float* rstd, int64_t N, int64_t C) {
  using namespace dev;
  __shared__ float scratch[32];
  CUDA_DYNAMIC_SHARED(float, dw);  // [C] partial weight gradient of this block's rows
  if (dweight)
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dw[c] = 0.f;
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const T* x = inp + n * C;
    const T* dy = dout + n * C;
    const float r = rstd[n];
    float dot = 0.f;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dot += to_f32(dy[c]) * to_f32(weight[c]) * to_f32(x[c]);
    dot = block_sum(dot, scratch);
    const float k = r * r * r * dot / float(C);
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const float xv = to_f32(x[c]), g = to_f32(dy[c]);
      if (dinp) {
        T* dx = dinp + n * C;
        dx[c] = from_f32<T>(to_f32(dx[c]) + (r * to_f32(weight[c]) * g - k * xv));
      }
      if (dweight) dw[c] += g * xv * r;  // each column has one owner thread: no race
    }
  }
  if (dweight)
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) atomicAdd(&dweight[c], dw[c]);
}

// The 16-byte path (C % 8 == 0, C <= kMaxVecC, every row buffer 16-byte aligned): thread t owns chunks t,
// t + blockDim, ... of 8 columns in every row (and the same columns of dw, so no barrier is needed between its
// zeroing, accumulation and flush); the first kCache chunks of a row (x, dy, w) stay in registers between the two
// passes. `dot` takes its products in the scalar kernel's order (x, dy and w windows transposed through shared
// memory, vec::window_put / window_get), and every other value is the scalar kernel's expression per element: the
// two paths give the same bits (dweight's atomicAdd order across blocks aside, as for the scalar kernel).
constexpr int kVecThreads = 256;
constexpr int64_t kVecWindowBytes = 3 * vec::kN * kVecThreads * int64_t(sizeof(float));  // x, dy, w windows
constexpr int64_t kMaxVecC = (48 * 1024 - 32 * int64_t(sizeof(float)) - kVecWindowBytes) / int64_t(sizeof(float));
static_assert(kMaxVecC == 6112, "rmsnorm backward 16-byte path: 48 KiB minus the scratch and the windows");

template <class T, int kCache = 2>
__global__ void rmsnorm_backward_vec_kernel(T* dinp, float* dweight, const T* dout, const T* inp, const T* weight,
                                            const float* rstd, int64_t N, int64_t C) {
  using namespace dev;
  __shared__ float scratch[32];
  __shared__ __align__(16) float win[3 * vec::kN * kVecThreads];  // x, dy, w windows
  CUDA_DYNAMIC_SHARED(float, dw);  // [C] partial weight gradient of this block's rows
  const int64_t chunks = C / vec::kN, B = blockDim.x;
  const float zero[vec::kN] = {};
  if (dweight)
    for (int64_t ch = threadIdx.x; ch < chunks; ch += B) vec::store8_shared(dw + ch * vec::kN, zero);
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const T* x = inp + n * C;
    const T* dy = dout + n * C;
    const float r = rstd[n];
    float xr[kCache][vec::kN], gr[kCache][vec::kN], wr[kCache][vec::kN];
    float dot = 0.f;
    vec::fold_row<3>(
        win, C,
        [&](int64_t k, int64_t ch, float (&v)[3][vec::kN]) {
          vec::load8(x + ch * vec::kN, v[0]);
          vec::load8(dy + ch * vec::kN, v[1]);
          vec::load8(weight + ch * vec::kN, v[2]);
          VR_UNROLL for (int kc = 0; kc < kCache; kc++)  // the first kCache chunks stay in registers
            if (kc == k) VR_UNROLL for (int j = 0; j < vec::kN; j++) {
                xr[kc][j] = v[0][j];
                gr[kc][j] = v[1][j];
                wr[kc][j] = v[2][j];
              }
        },
        [&](const float (&col)[3]) { dot += col[1] * col[2] * col[0]; });
    dot = block_sum(dot, scratch);
    const float kk = r * r * r * dot / float(C);
    // One chunk's outputs: dx += r w g - kk x; dw += g x r.
    auto emit = [&](int64_t ch, const float (&xv)[vec::kN], const float (&g)[vec::kN], const float (&w)[vec::kN]) {
      if (dinp) {
        T* dx = dinp + n * C + ch * vec::kN;
        float d[vec::kN];
        vec::load8(dx, d);
        VR_UNROLL for (int j = 0; j < vec::kN; j++) d[j] = d[j] + (r * w[j] * g[j] - kk * xv[j]);
        vec::store8(dx, d);
      }
      if (dweight) {
        float a[vec::kN];
        vec::load8_shared(dw + ch * vec::kN, a);
        VR_UNROLL for (int j = 0; j < vec::kN; j++) a[j] += g[j] * xv[j] * r;
        vec::store8_shared(dw + ch * vec::kN, a);
      }
    };
    VR_UNROLL for (int k = 0; k < kCache; k++) {
      const int64_t ch = threadIdx.x + int64_t(k) * B;
      if (ch < chunks) emit(ch, xr[k], gr[k], wr[k]);
    }
    for (int64_t ch = threadIdx.x + int64_t(kCache) * B; ch < chunks; ch += B) {
      float xv[vec::kN], g[vec::kN], w[vec::kN];
      vec::load8(x + ch * vec::kN, xv);
      vec::load8(dy + ch * vec::kN, g);
      vec::load8(weight + ch * vec::kN, w);
      emit(ch, xv, g, w);
    }
  }
  if (dweight)
    for (int64_t ch = threadIdx.x; ch < chunks; ch += B) {
      float a[vec::kN];
      vec::load8_shared(dw + ch * vec::kN, a);
      VR_UNROLL for (int j = 0; j < vec::kN; j++) atomicAdd(&dweight[ch * vec::kN + j], a[j]);
    }
}

template <class T, class S>
void forward(S* out, float* rstd, const S* inp, const S* weight, int64_t N, int64_t C, float eps, Stream s) {
  VR_CHECK(N >= 0 && C > 0, "cuda rmsnorm_forward: bad shape [", N, ", ", C, "]");
  if (N == 0) return;
  VR_CHECK(out && inp && weight, "cuda rmsnorm_forward: null buffer");
  VR_CHECK(N <= 0x7fffffff, "cuda rmsnorm_forward: too many rows (", N, ")");
  if (norm::rows_vectorizable(C, out, inp, weight)) {
    check_launch(cuda_launch(norm::rmsnorm_forward_vec_kernel<T, T>, dim3(unsigned(N)), dim3(kThreads), 0, s,
                             dptr(out), rstd, dptr(inp), dptr(weight), C, eps),
                 "rmsnorm_forward (16-byte)");
    return;
  }
  check_launch(cuda_launch(norm::rmsnorm_forward_kernel<T, T>, dim3(unsigned(N)), dim3(kThreads), 0, s, dptr(out),
                           rstd, dptr(inp), dptr(weight), C, eps),
               "rmsnorm_forward");
}

template <class T, class S>
void backward(S* dinp, float* dweight, const S* dout, const S* inp, const S* weight, const float* rstd, int64_t N,
              int64_t C, Stream s) {
  VR_CHECK(N >= 0 && C > 0, "cuda rmsnorm_backward: bad shape [", N, ", ", C, "]");
  if (N == 0 || (!dinp && !dweight)) return;
  VR_CHECK(dout && inp && weight && rstd, "cuda rmsnorm_backward: dout, inp, weight and rstd are required");
  VR_CHECK(C <= kMaxC, "cuda rmsnorm_backward: C=", C, " exceeds the supported ", kMaxC);
  const unsigned blocks = unsigned(N < kMaxBackwardBlocks ? N : kMaxBackwardBlocks);
  const size_t smem = dweight ? size_t(C) * sizeof(float) : 0;
  if (C <= kMaxVecC && norm::rows_vectorizable(C, dinp, dout, inp, weight)) {
    check_launch(cuda_launch(rmsnorm_backward_vec_kernel<T>, dim3(blocks), dim3(kThreads), smem, s, dptr(dinp),
                             dweight, dptr(dout), dptr(inp), dptr(weight), rstd, N, C),
                 "rmsnorm_backward (16-byte)");
    return;
  }
  check_launch(cuda_launch(rmsnorm_backward_kernel<T>, dim3(blocks), dim3(kThreads), smem, s, dptr(dinp), dweight,
                           dptr(dout), dptr(inp), dptr(weight), rstd, N, C),
               "rmsnorm_backward");
}

}  // namespace

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C,
                     float eps, Stream s) {
  forward<float>(out, rstd, inp, weight, N, C, eps, s);
}
void rmsnorm_forward(bf16* out, float* rstd, const bf16* inp, const bf16* weight, int64_t N, int64_t C, float eps,
                     Stream s) {
  forward<__nv_bfloat16>(out, rstd, inp, weight, N, C, eps, s);
}
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C, Stream s) {
  backward<float>(dinp, dweight, dout, inp, weight, rstd, N, C, s);
}
void rmsnorm_backward(bf16* dinp, float* dweight, const bf16* dout, const bf16* inp, const bf16* weight,
                      const float* rstd, int64_t N, int64_t C, Stream s) {
  backward<__nv_bfloat16>(dinp, dweight, dout, inp, weight, rstd, N, C, s);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
