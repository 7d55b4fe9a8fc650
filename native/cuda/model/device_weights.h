// A checkpoint's tensors in device memory, for the CUDA model path: GEMM weights and the embedding table in bf16,
// norm weights and biases in fp32, all in one DeviceArena (one cudaMalloc, sized before anything is copied).
// Tensors are read through WeightStore::get - the raw checkpoint views, never a packed CPU Linear - and converted
// on the host where the checkpoint's dtype differs (F32 / F16 -> BF16 rounds to nearest even).
//
// Fusions done at upload: the LLM's q/k/v projections become one [Dq + 2 Dkv, D] weight (and bias), so a layer
// runs one GEMM for them (its output rows are [q | k | v], which RoPE and the KV append read with a stride).
#pragma once
#include <cstdint>
#include <vector>

#include "cuda/kernels/cuda_kernels.h"
#include "cuda/model/device_arena.h"
#include "model/config.h"
#include "model/weights.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

// A Linear on the device: out[M, N] = inp[M, K] @ w[N, K]^T (+ b), the ops/linear.h layout.
struct DeviceLinear {
  const bf16* w = nullptr;
  const float* b = nullptr;  // may be null
  int64_t N = 0, K = 0;
};

struct DeviceDecoderLayer {
  const float* in_norm = nullptr;
  const float* post_norm = nullptr;
  DeviceLinear qkv;  // fused q | k | v, with the three biases
  DeviceLinear o, gate, up, down;
};

struct DeviceVisionBlock {
  const float* norm1 = nullptr;
  const float* norm2 = nullptr;
  DeviceLinear qkv, proj, gate, up, down;
  bool full = false;  // full attention (fullatt_block_indexes) rather than windows
};

// Which parts of the checkpoint go up. The inference session reads both; a text-only run skips the vision tower;
// the trainer reads only the frozen vision tower here (its decoder weights live in GpuTrainParams as bf16 shadows /
// fp32 masters, so uploading the LLM again would hold a second bf16 copy: ~15 GB for the 7B).
enum class WeightParts { All, LanguageOnly, VisionOnly };

class DeviceWeights {
 public:
  DeviceWeights(const ModelConfig& mc, const WeightStore& ws, WeightParts parts = WeightParts::All);

  const ModelConfig& config() const { return mc_; }
  size_t bytes() const { return arena_.used(); }

  // language model (null / empty when not uploaded)
  bool has_language = false;
  const bf16* embed = nullptr;  // [vocab, hidden]
  std::vector<DeviceDecoderLayer> layers;
  const float* final_norm = nullptr;
  DeviceLinear lm_head;  // the embedding table itself when the embeddings are tied

  // vision tower (empty when not uploaded)
  bool has_vision = false;
  DeviceLinear patch_embed;
  std::vector<DeviceVisionBlock> blocks;
  const float* merger_norm = nullptr;
  DeviceLinear merger_fc1, merger_fc2;

 private:
  ModelConfig mc_;
  DeviceArena arena_;
};

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
