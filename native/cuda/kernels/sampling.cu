// Greedy decoding step (model/qwen_vl.cc Session::generate, step 1): HF repetition penalty on the ids seen so
// far, applied on the fly while reading the logits, then argmax with the lowest id winning ties. One block per
// row. The CPU scans ids in order and replaces its best only on a strictly larger score, so a NaN never wins
// unless it sits at id 0 (then nothing beats it); the reduction below reproduces exactly that: NaNs are skipped,
// (score, id) pairs merge by larger score then smaller id (order-independent), and a NaN at id 0 overrides.
#include "cuda/kernels/common.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kThreads = 512;  // __launch_bounds__(kThreads) caps registers at 128 so a block always fits an SM

struct Best {
  float v;
  int32_t i;  // -1: empty
};
__device__ __forceinline__ Best better(Best a, Best b) {
  if (b.i < 0) return a;
  if (a.i < 0) return b;
  return (b.v > a.v || (b.v == a.v && b.i < a.i)) ? b : a;
}
__device__ __forceinline__ Best warp_best(Best x) {
  for (int o = 16; o > 0; o >>= 1) {
    Best y;
    y.v = __shfl_xor_sync(dev::kFullMask, x.v, o);
    y.i = __shfl_xor_sync(dev::kFullMask, x.i, o);
    x = better(x, y);
  }
  return x;
}

template <class T>
__global__ void __launch_bounds__(kThreads) greedy_kernel(int32_t* next, uint8_t* seen, const T* logits, int64_t V, float penalty,
                              bool mark_seen) {
  using namespace dev;
  __shared__ Best warp_res[32];
  __shared__ bool nan_at_0;
  const int64_t n = blockIdx.x;
  const T* x = logits + n * V;
  uint8_t* seen_row = seen ? seen + n * V : nullptr;
  const bool penalise = seen_row && penalty != 1.0f;
  Best best{0.f, -1};
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
    float s = to_f32(x[i]);
    if (penalise && seen_row[i]) s = s < 0.f ? s * penalty : s / penalty;
    if (i == 0) nan_at_0 = s != s;  // thread 0 only
    if (s != s) continue;
    if (best.i < 0 || s > best.v) best = Best{s, int32_t(i)};  // ids grow within a thread: ties keep the first
  }
  best = warp_best(best);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  if (lane == 0) warp_res[warp] = best;
  __syncthreads();
  if (warp == 0) {
    best = warp_best(lane < nwarps ? warp_res[lane] : Best{0.f, -1});
    if (lane == 0) {
      const int32_t id = nan_at_0 || best.i < 0 ? 0 : best.i;
      next[n] = id;
      if (mark_seen && seen_row) seen_row[id] = 1;
    }
  }
}

template <class T, class S>
void greedy(int32_t* next, uint8_t* seen, const S* logits, int64_t N, int64_t V, float penalty, bool mark_seen,
            Stream s) {
  VR_CHECK(N >= 0 && V > 0 && V <= 0x7fffffff, "cuda greedy_next_token: bad shape N=", N, " V=", V);
  VR_CHECK(penalty > 0.f, "cuda greedy_next_token: repetition penalty must be > 0 (got ", penalty, ")");
  VR_CHECK(N <= 0x7fffffff, "cuda greedy_next_token: too many rows (", N, ")");
  if (N == 0) return;
  VR_CHECK(next && logits, "cuda greedy_next_token: null buffer");
  check_launch(cuda_launch(greedy_kernel<T>, dim3(unsigned(N)), dim3(kThreads), 0, s, next, seen, dptr(logits), V,
                           penalty, mark_seen),
               "greedy_next_token");
}

}  // namespace

void greedy_next_token(int32_t* next, uint8_t* seen, const float* logits, int64_t N, int64_t V, float penalty,
                       bool mark_seen, Stream s) {
  greedy<float>(next, seen, logits, N, V, penalty, mark_seen, s);
}
void greedy_next_token(int32_t* next, uint8_t* seen, const bf16* logits, int64_t N, int64_t V, float penalty,
                       bool mark_seen, Stream s) {
  greedy<__nv_bfloat16>(next, seen, logits, N, V, penalty, mark_seen, s);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
