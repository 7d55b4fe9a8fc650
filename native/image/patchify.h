// Rescale + normalise + patchify of a resized uint8 RGB image into Qwen2-VL pixel_values
// (model.md §3.5-3.6), bit-identical to transformers' PIL/NumPy image-processor backend.
#pragma once
#include <cstdint>

namespace vr::image {

struct PatchifyParams {
  double rescale = 1.0 / 255.0;  // rescale_factor
  double mean[3] = {0.48145466, 0.4578275, 0.40821073};
  double std[3] = {0.26862954, 0.26130258, 0.27577711};
  int patch = 14;                // patch_size
  int merge = 2;                 // merge_size (spatial_merge_size)
  int temporal = 2;              // temporal_patch_size: the still image is repeated this many times
};

// Number of floats per patch row: 3 * temporal * patch * patch (1176 for Qwen2.5-VL).
int64_t patch_row_size(const PatchifyParams& p);

// rgb: height x width x 3 (interleaved). height and width must be multiples of patch*merge.
// out: (height/patch)*(width/patch) rows of patch_row_size floats, in 2x2-merge-block order.
void normalize_patchify(const uint8_t* rgb, int width, int height, const PatchifyParams& p, float* out);

}  // namespace vr::image
