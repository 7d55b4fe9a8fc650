#include "model/rope_tables.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace vr {

namespace {

// model.md Appendix A: float32 bit patterns of torch's inv_freq for the released configs.
const uint32_t kTextInv128[64] = {
    0x3f800000, 0x3f4e4bad, 0x3f263de0, 0x3f05f6ef, 0x3ed7e89b, 0x3eadfcff, 0x3e8c3504, 0x3e61f835,
    0x3e361887, 0x3e12bd91, 0x3dec7fd6, 0x3dbe94c6, 0x3d99940d, 0x3d778513, 0x3d47763f, 0x3d20bc1d,
    0x3d0186e3, 0x3cd0c1a8, 0x3ca8398b, 0x3c879008, 0x3c5a7bf2, 0x3c301052, 0x3c0de12d, 0x3be4aa46,
    0x3bb8449c, 0x3b947dae, 0x3b6f520e, 0x3b40dac5, 0x3b1b690d, 0x3afa78f0, 0x3ac9d75c, 0x3aa2a6f7,
    0x3a83126f, 0x3a533f28, 0x3a2a3b44, 0x3a092e02, 0x39dd1725, 0x39b229fb, 0x398f9272, 0x39676492,
    0x393a7753, 0x39164324, 0x38f22ce2, 0x38c327b5, 0x389d43a4, 0x387d75d4, 0x384c3fbe, 0x382497ab,
    0x3804a2b2, 0x37d5c441, 0x37ac431d, 0x378ad0ed, 0x375fba4f, 0x37344a0e, 0x371148e3, 0x36ea2732,
    0x36bcb0c1, 0x36980e02, 0x36751070, 0x36457bab, 0x361f23e4, 0x36003dec, 0x35ceaf79, 0x35a68e4c};
const uint32_t kVisionInv40[20] = {0x3f800000, 0x3f21866b, 0x3ecbd4b4, 0x3e809bcc, 0x3e224b06,
                                   0x3dcccccd, 0x3d813855, 0x3d231091, 0x3ccdc613, 0x3c81d5a0,
                                   0x3c23d70a, 0x3bcec089, 0x3b8273a4, 0x3b249e78, 0x3acfbc32,
                                   0x3a83126f, 0x3a2566d4, 0x39d0b907, 0x3983b1fa, 0x39263028};

float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Look up exponent e (float32) in a released table with the same theta.
bool from_table(float theta, float e, float* out) {
  struct T { float theta; int dim; const uint32_t* bits; };
  const T tables[2] = {{1e6f, 128, kTextInv128}, {1e4f, 40, kVisionInv40}};
  for (const T& t : tables) {
    if (t.theta != theta) continue;
    for (int j = 0; j < t.dim / 2; j++) {
      float ej = float(2 * j) / float(t.dim);
      if (ej == e) { *out = bits_to_float(t.bits[j]); return true; }
    }
  }
  return false;
}

}  // namespace

std::vector<float> rope_inv_freq(float theta, int dim) {
  std::vector<float> inv(dim / 2);
  for (int k = 0; k < dim / 2; k++) {
    float e = float(2 * k) / float(dim);
    if (!from_table(theta, e, &inv[k])) inv[k] = 1.0f / std::pow(theta, e);
  }
  return inv;
}

void vision_rope_tables(const VisionConfig& vc, const std::vector<ImageGrid>& grids, std::vector<float>& cos,
                        std::vector<float>& sin) {
  const int hd = vc.head_dim();
  const int q = hd / 4;  // frequencies per axis
  std::vector<float> inv = rope_inv_freq(vc.rope_theta, hd / 2);
  int64_t Np = 0;
  for (const ImageGrid& g : grids) Np += g.patches();
  // Every element is written below (the four q-wide sections fill all hd columns): resize, not assign, so a caller's
  // reused buffers (VisionWorkspace) are not cleared first.
  cos.resize(size_t(Np) * hd);
  sin.resize(size_t(Np) * hd);
  int64_t r0 = 0;
  for (const ImageGrid& g : grids) {
    const int m = vc.merge, bw_n = g.w / m;
    const int64_t rows_per_bh = int64_t(bw_n) * m * m;  // patches of one row of merge blocks
    const int64_t nbh = int64_t(g.t) * (g.h / m);
    // Rows of merge blocks are independent: row r = r0 + (t * (h / m) + bh) * rows_per_bh + ..., the processor's
    // order (t, bh, bw, mh, mw); parallel over them (~25 ms single-threaded at 65k patches).
#pragma omp parallel for schedule(static)
    for (int64_t tb = 0; tb < nbh; tb++) {
      const int bh = int(tb % (g.h / m));
      int64_t r = r0 + tb * rows_per_bh;
      for (int bw = 0; bw < bw_n; bw++)
        for (int mh = 0; mh < m; mh++)
          for (int mw = 0; mw < m; mw++, r++) {
            const float py = float(bh * m + mh), px = float(bw * m + mw);
            float* c = &cos[size_t(r) * hd];
            float* s = &sin[size_t(r) * hd];
            for (int k = 0; k < q; k++) {
              const float ay = py * inv[k], ax = px * inv[k];
              c[k] = c[k + hd / 2] = std::cos(ay);
              s[k] = s[k + hd / 2] = std::sin(ay);
              c[q + k] = c[q + k + hd / 2] = std::cos(ax);
              s[q + k] = s[q + k + hd / 2] = std::sin(ax);
            }
          }
    }
    r0 += g.patches();
  }
}

int64_t mrope_positions(const int32_t* ids, int64_t L, const std::vector<ImageGrid>& grids, int image_token_id,
                        int merge, std::vector<int64_t>& pos) {
  pos.assign(size_t(3 * L), 0);
  int64_t* pt = pos.data();
  int64_t* ph = pt + L;
  int64_t* pw = ph + L;
  int64_t next = 0, maxp = -1;
  size_t gi = 0;
  int64_t i = 0;
  while (i < L) {
    if (ids[i] != image_token_id) {
      pt[i] = ph[i] = pw[i] = next;
      maxp = std::max(maxp, next);
      next++;
      i++;
      continue;
    }
    VR_CHECK(gi < grids.size(), "prompt has more image-token runs than images (", grids.size(), ")");
    const ImageGrid& g = grids[gi++];
    const int64_t H = g.h / merge, W = g.w / merge, T = g.t;
    const int64_t n = T * H * W;
    VR_CHECK(i + n <= L, "prompt: image ", gi - 1, " needs ", n, " image tokens but the prompt ends first");
    for (int64_t j = 0; j < n; j++)
      VR_CHECK(ids[i + j] == image_token_id, "prompt: image ", gi - 1, " needs ", n,
               " consecutive image tokens, found ", j);
    VR_CHECK(i + n == L || ids[i + n] != image_token_id, "prompt: image token run longer than image ", gi - 1,
             " (", n, " tokens)");
    int64_t j = 0;
    for (int64_t t = 0; t < T; t++)
      for (int64_t r = 0; r < H; r++)
        for (int64_t c = 0; c < W; c++, j++) {
          pt[i + j] = next + t;
          ph[i + j] = next + r;
          pw[i + j] = next + c;
          maxp = std::max(maxp, std::max(next + t, std::max(next + r, next + c)));
        }
    next = maxp + 1;
    i += n;
  }
  VR_CHECK(gi == grids.size(), "prompt has ", gi, " image-token runs but ", grids.size(), " images were given");
  return maxp + 1 - L;
}

void mrope_tables(const TextConfig& tc, const int64_t* pos3, int64_t L, int64_t plane_stride,
                  std::vector<float>& cos, std::vector<float>& sin) {
  const int hd = tc.head_dim, half = hd / 2;
  std::vector<float> inv = rope_inv_freq(tc.rope_theta, hd);
  cos.resize(size_t(L) * hd);
  sin.resize(size_t(L) * hd);
  const int s0 = tc.mrope_section[0], s1 = s0 + tc.mrope_section[1];
  for (int64_t i = 0; i < L; i++) {
    float* c = &cos[size_t(i) * hd];
    float* s = &sin[size_t(i) * hd];
    for (int k = 0; k < half; k++) {
      const int axis = k < s0 ? 0 : (k < s1 ? 1 : 2);
      const float a = float(pos3[axis * plane_stride + i]) * inv[k];
      c[k] = c[k + half] = std::cos(a);
      s[k] = s[k + half] = std::sin(a);
    }
  }
}

}  // namespace vr
