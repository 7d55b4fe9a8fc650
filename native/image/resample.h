// Pillow-exact antialiased BICUBIC resize of interleaved uint8 images (model.md §3.4).
// Qwen2.5-VL's reference preprocessing (qwen-vl-utils, transformers' PIL backend) resizes with Pillow, so
// matching it bit for bit is what makes pixel_values identical to transformers'.
#pragma once
#include <cstdint>
#include <vector>

namespace vr::image {

// Resizes `src` (height x width x channels, row-major, interleaved) to out_height x out_width.
// Horizontal pass first, then vertical, each producing uint8, as Pillow's ImagingResample does; a pass whose
// size is unchanged is skipped. Throws vr::Error on non-positive sizes.
std::vector<uint8_t> resize_bicubic(const uint8_t* src, int width, int height, int channels, int out_width,
                                    int out_height);

}  // namespace vr::image
