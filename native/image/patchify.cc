// Each channel's 256 possible values are normalised once into a table: the float32 arithmetic is that of
// transformers' NumPy path, r = float32(double(u8) * rescale), v = (r - float32(mean)) / float32(std), so the
// table holds exactly the values HF produces, and the copy into patch order is a pure gather.
#include "image/patchify.h"

#include <cstring>

#include "core/error.h"

namespace vr::image {

int64_t patch_row_size(const PatchifyParams& p) { return int64_t(3) * p.temporal * p.patch * p.patch; }

void normalize_patchify(const uint8_t* rgb, int width, int height, const PatchifyParams& p, float* out) {
  VR_CHECK(p.patch > 0 && p.merge > 0 && p.temporal > 0, "patchify: patch, merge and temporal sizes must be positive");
  const int factor = p.patch * p.merge;
  VR_CHECK(width > 0 && height > 0 && width % factor == 0 && height % factor == 0, "patchify: image size ", width,
           "x", height, " is not a positive multiple of ", factor);
  for (int c = 0; c < 3; c++) VR_CHECK(p.std[c] != 0.0, "patchify: image_std[", c, "] is zero");

  float lut[3][256];
  for (int c = 0; c < 3; c++) {
    const float m = float(p.mean[c]), s = float(p.std[c]);
    for (int u = 0; u < 256; u++) {
      const float r = float(double(u) * p.rescale);  // rounded to float32 before subtracting, as NumPy does
      lut[c][u] = (r - m) / s;
    }
  }

  const int P = p.patch, M = p.merge, T = p.temporal;
  const int gh = height / P, gw = width / P;
  const int64_t row = patch_row_size(p), plane = int64_t(P) * P;
  const int blocks_w = gw / M;
  const int64_t nblocks = int64_t(gh / M) * blocks_w;
#pragma omp parallel for schedule(static) if (nblocks > 64)
  for (int64_t b = 0; b < nblocks; b++) {
    const int bh = int(b / blocks_w), bw = int(b % blocks_w);
    for (int mh = 0; mh < M; mh++) {
      for (int mw = 0; mw < M; mw++) {
        const int py = bh * M + mh, px = bw * M + mw;
        float* dst = out + (b * M * M + mh * M + mw) * row;
        for (int c = 0; c < 3; c++) {
          float* first = dst + int64_t(c) * T * plane;  // t = 0 slice of this channel
          for (int i = 0; i < P; i++) {
            const uint8_t* src = rgb + (size_t(py * P + i) * width + size_t(px) * P) * 3 + c;
            float* d = first + int64_t(i) * P;
            for (int j = 0; j < P; j++) d[j] = lut[c][src[size_t(j) * 3]];
          }
          // the still image is duplicated along the temporal axis
          for (int t = 1; t < T; t++) std::memcpy(first + t * plane, first, sizeof(float) * plane);
        }
      }
    }
  }
}

}  // namespace vr::image
