// Rotary tables for both towers and the M-RoPE position ids (get_rope_index), as transformers computes them.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace vr {

// inv[k] = 1 / theta^(2k/dim), k < dim/2, as torch computes it in float32. torch's values are not the
// correctly rounded ones (model.md §6.4), so entries whose float32 exponent matches the released tables
// (theta 1e6 / dim 128 for the LLM, theta 1e4 / dim 40 for the ViT; model.md Appendix A) are copied from them;
// any other entry falls back to 1/powf (at most ~1 ulp from torch).
std::vector<float> rope_inv_freq(float theta, int dim);

struct ImageGrid {
  int t = 1, h = 0, w = 0;  // in patches (h, w even)
  int64_t patches() const { return int64_t(t) * h * w; }
  int64_t tokens() const { return patches() / 4; }  // merged tokens (2x2)
};

// ViT 2-D rotary tables in processor (merge-block-major) patch order: cos/sin [Np, head_dim].
void vision_rope_tables(const VisionConfig& vc, const std::vector<ImageGrid>& grids, std::vector<float>& cos,
                        std::vector<float>& sin);

// get_rope_index for images: pos is [3][L] (t, h, w planes); returns rope_delta = max(pos) + 1 - L.
// Each run of image_token_id consumes the next grid; a run whose length differs from the grid's token count
// (or a grid left over) throws.
int64_t mrope_positions(const int32_t* ids, int64_t L, const std::vector<ImageGrid>& grids, int image_token_id,
                        int merge, std::vector<int64_t>& pos);

// M-RoPE tables for L tokens with positions pos3 [3][L] (planes t, h, w): cos/sin [L, head_dim]; frequency k
// uses axis t for k < s0, h for k < s0+s1, else w; the two halves of each row are equal.
void mrope_tables(const TextConfig& tc, const int64_t* pos3, int64_t L, int64_t plane_stride,
                  std::vector<float>& cos, std::vector<float>& sin);

}  // namespace vr
