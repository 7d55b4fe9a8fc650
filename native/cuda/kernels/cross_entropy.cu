// Fused cross-entropy forward + backward over the vocabulary (see cuda_kernels.h). One block per row:
//   pass 1: each thread keeps an online (max, sum exp) over its strided columns; the block merges them into
//           lse = logsumexp(row); loss = lse - row[target];
//   pass 2: dlogits = grad_scale * (exp(row - lse) - onehot(target)), written over the row (in place is safe:
//           each element is read before it is written, by the same thread).
// The probabilities exist only one element at a time, so nothing vocabulary-sized is allocated.
// A target outside [0, V) that is not ignore_index gives loss NaN and a zero gradient row.
// kVec (V % 8 == 0, logits / dlogits 16-byte aligned): both passes move chunks of 8 columns (16-byte loads / stores)
// with each element's maths the scalar one; pass 1 folds the columns in the scalar kernel's order through a
// shared-memory transpose, so the two paths give the same bits.
#include "cuda/kernels/common.cuh"
#include "cuda/kernels/elementwise_vec.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kThreads = 512;  // __launch_bounds__(kThreads) caps registers at 128 so a block always fits an SM

// One column into a thread's online (max, sum of exp(x - max)).
__device__ __forceinline__ void online_add(float& m, float& s, float x) {
  if (x > m) {
    s = (m == -INFINITY ? 0.f : s * expf(m - x)) + 1.f;
    m = x;
  } else {
    s += expf(x - m);
  }
}
__device__ __forceinline__ float ce_grad(float x, float lse, bool valid, bool is_target, float grad_scale) {
  const float p = expf(x - lse);
  return valid ? grad_scale * (p - (is_target ? 1.f : 0.f)) : 0.f;
}

template <class T, bool kVec>
__global__ void __launch_bounds__(kThreads) cross_entropy_kernel(float* losses, T* dlogits, const T* logits,
                                                                 const int32_t* targets, int64_t V, float grad_scale,
                                                                 int32_t ignore_index) {
  using namespace dev;
  __shared__ float sm_m[32], sm_s[32];
  const int64_t n = blockIdx.x;
  const T* row = logits + n * V;
  const int32_t target = targets[n];
  const bool ignored = target == ignore_index;
  const bool valid = !ignored && target >= 0 && target < V;

  float m = -INFINITY, s = 0.f;
  if constexpr (kVec) {
    // Windows of 8 blockDim columns through shared memory, so each thread folds the scalar kernel's columns in its
    // order (vec::window_put / window_get): the same (max, sum) bits.
    __shared__ __align__(16) float win[vec::kN * kThreads];
    vec::fold_row<1>(
        win, V, [&](int64_t, int64_t ch, float (&x)[1][vec::kN]) { vec::load8(row + ch * vec::kN, x[0]); },
        [&](const float (&col)[1]) { online_add(m, s, col[0]); });
  } else {
    for (int64_t c = threadIdx.x; c < V; c += blockDim.x) online_add(m, s, to_f32(row[c]));
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
  if constexpr (kVec) {
    for (int64_t c = int64_t(threadIdx.x) * vec::kN; c < V; c += int64_t(blockDim.x) * vec::kN) {
      float x[vec::kN];
      vec::load8(row + c, x);
      VR_UNROLL for (int j = 0; j < vec::kN; j++) x[j] = ce_grad(x[j], lse, valid, c + j == target, grad_scale);
      vec::store8(drow + c, x);
    }
  } else {
    for (int64_t c = threadIdx.x; c < V; c += blockDim.x)
      drow[c] = from_f32<T>(ce_grad(to_f32(row[c]), lse, valid, c == target, grad_scale));
  }
}

template <class T, class S>
void run(float* losses, S* dlogits, const S* logits, const int32_t* targets, int64_t N, int64_t V, float grad_scale,
         int32_t ignore_index, Stream s) {
  VR_CHECK(N >= 0 && V > 0, "cuda cross_entropy: bad shape [", N, ", ", V, "]");
  if (N == 0) return;
  VR_CHECK(losses && logits && targets, "cuda cross_entropy: losses, logits and targets are required");
  VR_CHECK(N <= 0x7fffffff, "cuda cross_entropy: too many rows (", N, ")");
  if (V % vec::kN == 0 && vec::usable(logits, dlogits))
    check_launch(cuda_launch(cross_entropy_kernel<T, true>, dim3(unsigned(N)), dim3(kThreads), 0, s, losses,
                             dptr(dlogits), dptr(logits), targets, V, grad_scale, ignore_index),
                 "cross_entropy_forward_backward (16-byte)");
  else
    check_launch(cuda_launch(cross_entropy_kernel<T, false>, dim3(unsigned(N)), dim3(kThreads), 0, s, losses,
                             dptr(dlogits), dptr(logits), targets, V, grad_scale, ignore_index),
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
