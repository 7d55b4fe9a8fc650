// The Qwen2.5-VL vision tower (ViT, frozen in V-Reflection): patch embedding, 2-D RoPE, window attention with
// full attention in fullatt_block_indexes, RMSNorm, SwiGLU, and the 2x2 patch merger; output tokens come back
// in raster order per image (window order undone), i.e. the order of the <|image_pad|> tokens (model.md §4).
#pragma once
#include <cstdint>
#include <vector>

#include "core/progress.h"
#include "model/config.h"
#include "model/rope_tables.h"
#include "model/swiglu_mlp.h"
#include "model/weights.h"
#include "ops/linear.h"

namespace vr {

// Window partition of one batch of images (model.md §4.3): `order[j]` is the merged-token id (global, raster per
// image) placed at window-order slot j; cu_window / cu_full are segment boundaries in patch units.
struct VisionWindows {
  std::vector<int64_t> order;
  std::vector<int32_t> cu_window;
  std::vector<int32_t> cu_full;
  // The processor-order patch row that window-order row p holds (u = merge^2 patches per merged token).
  int64_t source_patch(int64_t p, int u) const { return order[size_t(p / u)] * u + p % u; }
};
VisionWindows vision_windows(const VisionConfig& vc, const std::vector<ImageGrid>& grids);
// dst[p] = src[win.source_patch(p, u)] for the Np rows of `cols` floats: processor order -> window order.
void permute_to_window_order(const VisionWindows& win, int u, const float* src, float* dst, int64_t Np,
                             int64_t cols);
// Patches in the batch (sum of t*h*w); vr::Error unless every grid is a positive multiple of the merge size.
// Shared by the CPU and the CUDA towers.
int64_t vision_patch_count(const VisionConfig& vc, const std::vector<ImageGrid>& grids);

// Activation buffers of one forward pass, kept by the caller (a Session, the Trainer) from call to call: a
// fresh set per call costs ~100 MB of first-touch page faults on a 672x672 image (a fifth of the ViT's time
// in training). Buffers only grow; every element is overwritten before it is read, so no clearing is needed.
struct VisionWorkspace {
  std::vector<float> x0, x, cos0, sin0, cos, sin, h, qkv, att, m1, y;
  std::vector<uint16_t> m1_16;  // the merger's GELU in bf16 (BF16 weights)
  MLPScratch mlp;
  std::vector<uint16_t> h16;
};

class VisionTower {
 public:
  VisionTower(const VisionConfig& vc, WeightStore& ws, DType compute);
  // pixel_values [Np, patch_dim] (processor order) -> features [Np/4, out_hidden].
  // `work` may be null (then the buffers live for this call only).
  void forward(const float* pixel_values, const std::vector<ImageGrid>& grids, std::vector<float>& features,
               Progress* progress = nullptr, VisionWorkspace* work = nullptr) const;

 private:
  struct Block {
    const float* norm1;
    const float* norm2;
    Linear qkv, proj, gate, up, down;
    bool full;
  };
  VisionConfig vc_;
  Linear patch_embed_;
  std::vector<Block> blocks_;
  const float* merger_norm_;
  Linear merger_fc1_, merger_fc2_;
};

}  // namespace vr
