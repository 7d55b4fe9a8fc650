// Pillow's two-pass resampler (Resample.c) for the bicubic filter, restated from model.md §3.4:
// double-precision weights per output sample, normalised, then quantised to 22 fraction bits; the sums are
// integer, so the result does not depend on evaluation order or thread count.
#include "image/resample.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace vr::image {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // 22 fraction bits, as Pillow's 8-bit path
constexpr double kSupport = 2.0;           // bicubic kernel radius

// Keys cubic with a = -0.5 (Pillow's bicubic_filter).
double bicubic(double x) {
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Fixed-point weights of one pass: for output index o, taps in[first[o] .. first[o] + count[o]) with weights
// k[o * ksize + t].
struct Taps {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;
};

Taps precompute(int in_size, int out_size) {
  // Pillow computes the scale from float box edges; for sizes below 2^24 the float is exact.
  const double scale = double(float(in_size)) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;  // stretch the kernel when downsampling (antialias)
  const double support = kSupport * filterscale;
  Taps t;
  t.ksize = int(std::ceil(support)) * 2 + 1;
  t.first.resize(out_size);
  t.count.resize(out_size);
  t.k.assign(size_t(out_size) * t.ksize, 0);
  std::vector<double> w(t.ksize);
  const double ss = 1.0 / filterscale;  // Pillow multiplies by the reciprocal, never divides
  for (int o = 0; o < out_size; o++) {
    const double center = (o + 0.5) * scale;
    int xmin = int(center - support + 0.5);  // C truncation toward zero, as in Pillow
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    if (xmax > t.ksize) xmax = t.ksize;  // cannot happen for valid sizes; keeps the table in bounds
    double sum = 0.0;
    for (int x = 0; x < xmax; x++) {
      w[x] = bicubic((x + xmin - center + 0.5) * ss);
      sum += w[x];
    }
    int32_t* k = &t.k[size_t(o) * t.ksize];
    for (int x = 0; x < xmax; x++) {
      double v = sum != 0.0 ? w[x] / sum : w[x];
      // round half away from zero into 22-bit fixed point
      k[x] = v < 0 ? int32_t(-0.5 + v * (1 << kPrecisionBits)) : int32_t(0.5 + v * (1 << kPrecisionBits));
    }
    t.first[o] = xmin;
    t.count[o] = xmax;
  }
  return t;
}

inline uint8_t clip8(int64_t acc) {
  int64_t v = acc >> kPrecisionBits;  // arithmetic shift (floor), like Pillow's clip8
  return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

// C channels interleaved: all channels of a tap are accumulated together (one weight load per tap).
template <int C>
void horizontal(const uint8_t* src, int w, int h, uint8_t* dst, int ow) {
  const Taps t = precompute(w, ow);
  const int64_t half = int64_t(1) << (kPrecisionBits - 1);
#pragma omp parallel for schedule(static) if (int64_t(h) * ow > 65536)
  for (int y = 0; y < h; y++) {
    const uint8_t* row = src + size_t(y) * w * C;
    uint8_t* out = dst + size_t(y) * ow * C;
    for (int o = 0; o < ow; o++) {
      const int32_t* k = &t.k[size_t(o) * t.ksize];
      const uint8_t* p = row + size_t(t.first[o]) * C;
      int64_t acc[C];
      for (int ch = 0; ch < C; ch++) acc[ch] = half;
      for (int x = 0; x < t.count[o]; x++) {
        const int64_t kx = k[x];
        for (int ch = 0; ch < C; ch++) acc[ch] += p[x * C + ch] * kx;
      }
      for (int ch = 0; ch < C; ch++) out[size_t(o) * C + ch] = clip8(acc[ch]);
    }
  }
}

void horizontal(const uint8_t* src, int w, int h, int c, uint8_t* dst, int ow) {
  switch (c) {
    case 1: return horizontal<1>(src, w, h, dst, ow);
    case 2: return horizontal<2>(src, w, h, dst, ow);
    case 3: return horizontal<3>(src, w, h, dst, ow);
    default: return horizontal<4>(src, w, h, dst, ow);
  }
}

void vertical(const uint8_t* src, int w, int h, int c, uint8_t* dst, int oh) {
  const Taps t = precompute(h, oh);
  const int64_t half = int64_t(1) << (kPrecisionBits - 1);
  const size_t stride = size_t(w) * c;
#pragma omp parallel if (int64_t(oh) * w > 65536)
  {
    // one accumulator row per thread; taps outer, pixels inner, so rows are read contiguously
    std::vector<int64_t> acc(stride);
#pragma omp for schedule(static)
    for (int o = 0; o < oh; o++) {
      const int32_t* k = &t.k[size_t(o) * t.ksize];
      const uint8_t* base = src + size_t(t.first[o]) * stride;
      std::fill(acc.begin(), acc.end(), half);
      for (int y = 0; y < t.count[o]; y++) {
        const uint8_t* row = base + size_t(y) * stride;
        const int64_t ky = k[y];
        for (size_t i = 0; i < stride; i++) acc[i] += row[i] * ky;
      }
      uint8_t* out = dst + size_t(o) * stride;
      for (size_t i = 0; i < stride; i++) out[i] = clip8(acc[i]);
    }
  }
}

}  // namespace

std::vector<uint8_t> resize_bicubic(const uint8_t* src, int width, int height, int channels, int out_width,
                                    int out_height) {
  VR_CHECK(width > 0 && height > 0, "resize: input size ", width, "x", height, " is empty");
  VR_CHECK(out_width > 0 && out_height > 0, "resize: target size ", out_width, "x", out_height, " is empty");
  VR_CHECK(channels >= 1 && channels <= 4, "resize: ", channels, " channels (expected 1..4)");
  const size_t in_bytes = size_t(width) * height * channels;
  if (out_width == width && out_height == height) return std::vector<uint8_t>(src, src + in_bytes);
  std::vector<uint8_t> mid;
  const uint8_t* cur = src;
  if (out_width != width) {
    mid.resize(size_t(out_width) * height * channels);
    horizontal(src, width, height, channels, mid.data(), out_width);
    cur = mid.data();
  }
  if (out_height == height) return mid;  // only the horizontal pass was needed
  std::vector<uint8_t> out(size_t(out_width) * out_height * channels);
  vertical(cur, out_width, height, channels, out.data(), out_height);
  return out;
}

}  // namespace vr::image
