// The normalised Qwen2.5-VL configuration the engine runs on. TypeScript (src/model/config.ts) parses
// config.json in either layout and hands these numbers over; the engine checks them again (validate()).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace vr {

struct VisionConfig {
  int depth = 0, hidden = 0, heads = 0, intermediate = 0, out_hidden = 0;
  int patch = 14, temporal_patch = 2, merge = 2, window_size = 112, in_channels = 3;
  std::vector<int> fullatt_blocks;
  float rope_theta = 10000.0f;
  float eps = 1e-6f;  // hard-coded in the HF model code (model.md §1.2)
  int head_dim() const { return hidden / heads; }
  int patch_dim() const { return in_channels * temporal_patch * patch * patch; }
};

struct TextConfig {
  int hidden = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, intermediate = 0, vocab = 0;
  float eps = 1e-6f;
  float rope_theta = 1e6f;
  int mrope_section[3] = {0, 0, 0};
  bool tie_embeddings = false;
};

struct ModelConfig {
  TextConfig text;
  VisionConfig vision;
  int image_token_id = -1;
  int vision_start_token_id = -1;
  DType compute = DType::F32;  // F32 or BF16: the precision of the GEMMs (activations stay fp32)
  void validate() const;       // throws vr::Error naming the bad field
};

}  // namespace vr
