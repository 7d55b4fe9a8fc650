// The attention capture of latent steps on the CUDA backend (the GPU twin of the CPU's AttnProbe in
// model/language_model.cc): for the last query row of a decoder forward, the softmax probabilities over a key
// range (the image tokens), averaged over heads and layers - what `vreflect infer --attention-map` draws.
#pragma once
#include <cstdint>

#include "cuda/kernels/cuda_kernels.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

// A forward's probe: probs [key_end - key_begin] fp32 on the device; GpuLanguageModel::forward fills it.
struct DeviceAttnProbe {
  int64_t key_begin = 0, key_end = 0;
  float* probs = nullptr;
};

// probs[j] (+)= weight * sum_h exp(scale * q_h . k_{key_begin + j, h / (Hq / Hkv)} - lse_h), j < nk, for one query
// row q [Hq * D] (bf16, after RoPE), the cache keys K [rows, Hkv * D] (bf16) and that row's log-sum-exp per head
// (lse_h at lse[h * lse_stride]). accumulate = false writes instead of adding (the first layer).
void attention_probe(float* probs, const bf16* q, const float* lse, int64_t lse_stride, const bf16* K,
                     int64_t key_begin, int64_t nk, int Hq, int Hkv, int D, float scale, float weight, bool accumulate,
                     Stream s = nullptr);

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
