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

template <class T, class S>
void forward(S* out, float* rstd, const S* inp, const S* weight, int64_t N, int64_t C, float eps, Stream s) {
  VR_CHECK(N >= 0 && C > 0, "cuda rmsnorm_forward: bad shape [", N, ", ", C, "]");
  if (N == 0) return;
  VR_CHECK(out && inp && weight, "cuda rmsnorm_forward: null buffer");
  VR_CHECK(N <= 0x7fffffff, "cuda rmsnorm_forward: too many rows (", N, ")");
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
