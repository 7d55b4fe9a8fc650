// The DAC head: the LLM's hidden states at the slots as queries and all visual rows of each box's sample as keys,
// through the shared cross-attention block (gpu_train_resampler.cc); the q GEMM's input gradient lands in dHq.
#include "cuda/model/gpu_train_dac.h"

#include <algorithm>

#include "core/error.h"
#include "cuda/model/model_kernels.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

GpuDynamicCompression::GpuDynamicCompression(GpuTrainParams& params, const std::string& prefix, int64_t D, Stream s)
    : block_(params, prefix, D, "DAC", s), D_(D), s_(s) {}

void GpuDynamicCompression::forward(float* Z, const float* Hq, int64_t nb, int nq, const float* V, int64_t nrows,
                                    const int32_t* cu_sample, int64_t nsamples, const int32_t* box_sample,
                                    float* attn) {
  VR_CHECK(nb > 0 && nq > 0, "cuda DAC: no boxes or no queries");
  VR_CHECK(cu_sample[0] >= 0 && cu_sample[nsamples] <= nrows, "cuda DAC: sample rows [", cu_sample[0], ", ",
           cu_sample[nsamples], ") outside the ", nrows, " visual rows");
  int64_t S = 0;
  for (int64_t b = 0; b < nb; b++) {
    const int32_t s = box_sample[b];
    VR_CHECK(s >= 0 && s < nsamples, "cuda DAC: box ", b, " belongs to sample ", s, " of ", nsamples);
    const int64_t n = int64_t(cu_sample[s + 1]) - cu_sample[s];
    VR_CHECK(n > 0, "DAC: sample ", s, " owns box ", b, " but has no visual tokens");
    S = std::max(S, n);
  }
  // Each box's sample rows, padded to the largest sample (-1: a padding slot).
  std::vector<int32_t> slots(size_t(nb * S), -1);
  for (int64_t b = 0; b < nb; b++) {
    const int32_t s = box_sample[b];
    for (int64_t j = 0; j < int64_t(cu_sample[s + 1]) - cu_sample[s]; j++) slots[size_t(b * S + j)] = int32_t(cu_sample[s] + j);
  }
  bf16* hq16 = block_.begin(nb, nq, S, slots);
  convert(hq16, Hq, nb * nq * D_, s_);  // the queries as a bf16 GEMM operand, as every GEMM input
  block_.run(Z, V, nrows, attn);
}

void GpuDynamicCompression::backward(const float* dZ, const float* dattn, float* dHq) {
  VR_CHECK(block_.groups() > 0, "cuda DAC backward: no forward pass to differentiate");
  block_.backward(dZ, dattn, dHq);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
