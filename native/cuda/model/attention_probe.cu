// attention_probe (attention_probe.h): one thread per key, looping over the heads in order, so each probability
// is one thread's sum (no atomics: the same value run to run). Inference only, a D-long dot product per head and
// key: a few microseconds per latent step on the image rows of a large image.
#include "cuda/kernels/common.cuh"
#include "cuda/model/attention_probe.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kThreads = 128;

__global__ void attention_probe_kernel(float* probs, const __nv_bfloat16* q, const float* lse, int64_t lse_stride,
                                       const __nv_bfloat16* K, int64_t key_begin, int64_t nk, int Hq, int Hkv, int D,
                                       float scale, float weight, bool accumulate) {
  using namespace dev;
  const int group = Hq / Hkv;
  const int64_t row = int64_t(Hkv) * D;
  for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < nk; j += int64_t(gridDim.x) * blockDim.x) {
    const __nv_bfloat16* k = K + (key_begin + j) * row;
    float p = 0.f;
    for (int h = 0; h < Hq; h++) {
      const __nv_bfloat16* qh = q + int64_t(h) * D;
      const __nv_bfloat16* kh = k + int64_t(h / group) * D;
      float dot = 0.f;
      for (int d = 0; d < D; d++) dot += to_f32(qh[d]) * to_f32(kh[d]);
      p += expf(dot * scale - lse[int64_t(h) * lse_stride]);
    }
    probs[j] = (accumulate ? probs[j] : 0.f) + p * weight;
  }
}

}  // namespace

void attention_probe(float* probs, const bf16* q, const float* lse, int64_t lse_stride, const bf16* K,
                     int64_t key_begin, int64_t nk, int Hq, int Hkv, int D, float scale, float weight, bool accumulate,
                     Stream s) {
  VR_CHECK(nk >= 0 && key_begin >= 0 && Hq > 0 && Hkv > 0 && Hq % Hkv == 0 && D > 0,
           "cuda attention_probe: bad arguments (keys ", key_begin, " + ", nk, ", heads ", Hq, "/", Hkv, ", D ", D, ")");
  if (nk == 0) return;
  VR_CHECK(probs && q && lse && K, "cuda attention_probe: null buffer");
  check_launch(cuda_launch(attention_probe_kernel, dim3(grid_for(nk, kThreads)), dim3(kThreads), 0, s, probs, dptr(q),
                           lse, lse_stride, dptr(K), key_begin, nk, Hq, Hkv, D, scale, weight, accumulate),
               "attention_probe");
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
