// Fused cross-entropy forward + backward over the vocabulary (see cuda_kernels.h). One block per row:
//   pass 1: each thread keeps an online (max, sum exp) over its strided columns; the block merges them into
//           lse = logsumexp(row); loss = lse - row[target];
//   pass 2: dlogits = grad_scale * (exp(row - lse) - onehot(target)), written over the row (in place is safe:
//           each element is read before it is written, by the same thread).
// The probabilities exist only one element at a time, so nothing vocabulary-sized is allocated.
// A target outside [0, V) that is not ignore_index gives loss NaN and a zero gradient row.
#include "cuda/kernels/common.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kThreads = 512;  // __launch_bounds__(kThreads) caps registers at 128 so a block always fits an SM

template <class T>
__global__ void __launch_bounds__(kThreads) cross_entropy_kernel(float* losses, T* dlogits, const T* logits, const int32_t* targets, int64_t V,
                                     float grad_scale, int32_t ignore_index) {
  using namespace dev;
  __shared__ float sm_m[32], sm_s[32];
  const int64_t n = blockIdx.x;
  const T* row = logits + n * V;
  const int32_t target = targets[n];
  const bool ignored = target == ignore_index;
  const bool valid = !ignored && target >= 0 && target < V;

  float m = -INFINITY, s = 0.f;
  for (int64_t c = threadIdx.x; c < V; c += blockDim.x) {
    const float x = to_f32(row[c]);
    if (x > m) {
      s = (m == -INFINITY ? 0.f : s * expf(m - x)) + 1.f;
      m = x;
    } else {
      s += expf(x - m);
    }
  }
  for (int o = 16; o > 0; o >>= 1) softmax_merge(m, s, __shfl_xor_sync(kFullMask, m, o), __shfl_xor_sync(kFullMask, s, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  if (lane == 0) {
    sm_m[warp] = m;
    sm_s[warp] = s;
  }
  __syncthreads();
  m = lane < nwarps ? sm_m[lane] : -INFINITY;
  s = lane < nwarps ? sm_s[lane] : 0.f;
  for (int o = 16; o > 0; o >>= 1) softmax_merge(m, s, __shfl_xor_sync(kFullMask, m, o), __shfl_xor_sync(kFullMask, s, o));
  const float lse = m + logf(s);

  if (threadIdx.x == 0) losses[n] = ignored ? 0.f : valid ? lse - to_f32(row[target]) : NAN;
  if (!dlogits) return;
  __syncthreads();  // thread 0 has read row[target] before anyone overwrites it in place
  T* drow = dlogits + n * V;
  for (int64_t c = threadIdx.x; c < V; c += blockDim.x) {
    const float p = expf(to_f32(row[c]) - lse);
    drow[c] = from_f32<T>(valid ? grad_scale * (p - (c == target ? 1.f : 0.f)) : 0.f);
  }
}

template <class T, class S>
void run(float* losses, S* dlogits, const S* logits, const int32_t* targets, int64_t N, int64_t V, float grad_scale,
         int32_t ignore_index, Stream s) {
  VR_CHECK(N >= 0 && V > 0, "cuda cross_entropy: bad shape [", N, ", ", V, "]");
  if (N == 0) return;
  VR_CHECK(losses && logits && targets, "cuda cross_entropy: losses, logits and targets are required");
  VR_CHECK(N <= 0x7fffffff, "cuda cross_entropy: too many rows (", N, ")");
  check_launch(cuda_launch(cross_entropy_kernel<T>, dim3(unsigned(N)), dim3(kThreads), 0, s, losses, dptr(dlogits),
                           dptr(logits), targets, V, grad_scale, ignore_index),
               "cross_entropy_forward_backward");
}

}  // namespace

void cross_entropy_forward_backward(float* losses, float* dlogits, const float* logits, const int32_t* targets,
                                    int64_t N, int64_t V, float grad_scale, int32_t ignore_index, Stream s) {
  run<float>(losses, dlogits, logits, targets, N, V, grad_scale, ignore_index, s);
}
void cross_entropy_forward_backward(float* losses, bf16* dlogits, const bf16* logits, const int32_t* targets,
                                    int64_t N, int64_t V, float grad_scale, int32_t ignore_index, Stream s) {
  run<__nv_bfloat16>(losses, dlogits, logits, targets, N, V, grad_scale, ignore_index, s);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
