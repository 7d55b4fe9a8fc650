// The ViT's rotary tables (model/rope_tables vision_rope_tables) against transformers' rot_pos_emb written out
// the way it builds them: per grid, hpos = arange(h) repeated over w, wpos = arange(w) repeated over h, both
// reshaped (h/m, m, w/m, m), permuted (0, 2, 1, 3) and flattened, repeated t times; the angle row is
// [hpos * inv_freq | wpos * inv_freq] (hd/4 each), duplicated to hd columns (emb = cat(freqs, freqs)).
// Several grids with t > 1 and non-square shapes: the table's row for each patch of every grid must be right
// (a parallel loop that computes a row index wrongly for the second grid or frame fails here).
#include <cmath>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/rope_tables.h"
#include "tests/harness.h"

namespace vr::test {

VR_TEST(vision_rope_tables_match_rot_pos_emb) {
  VisionConfig vc;
  vc.hidden = 1280;
  vc.heads = 16;  // head dim 80: 20 frequencies per axis
  const int hd = vc.head_dim(), q = hd / 4, m = vc.merge;
  const std::vector<ImageGrid> grids = {{2, 4, 6}, {1, 6, 2}, {3, 2, 2}};
  std::vector<float> cos, sin;
  vision_rope_tables(vc, grids, cos, sin);

  std::vector<double> ref_cos, ref_sin;
  for (const ImageGrid& g : grids) {
    // index (a, b, c, d) of the (h/m, m, w/m, m) view, read in permuted order (a, c, b, d)
    std::vector<int> hp, wp;
    for (int a = 0; a < g.h / m; a++)
      for (int c = 0; c < g.w / m; c++)
        for (int b = 0; b < m; b++)
          for (int d = 0; d < m; d++) {
            hp.push_back(a * m + b);  // row of element (a*m+b, c*m+d) of the h x w grid
            wp.push_back(c * m + d);
          }
    for (int t = 0; t < g.t; t++)
      for (size_t i = 0; i < hp.size(); i++) {
        std::vector<double> ang(static_cast<size_t>(hd));
        for (int k = 0; k < q; k++) {
          const double inv = 1.0 / std::pow(double(vc.rope_theta), 2.0 * k / (hd / 2));
          ang[size_t(k)] = hp[i] * inv;
          ang[size_t(q + k)] = wp[i] * inv;
        }
        for (int k = 0; k < hd / 2; k++) ang[size_t(hd / 2 + k)] = ang[size_t(k)];
        for (double a : ang) {
          ref_cos.push_back(std::cos(a));
          ref_sin.push_back(std::sin(a));
        }
      }
  }
  check_true("vision rope table rows = patches of all grids", cos.size() == ref_cos.size() && sin.size() == cos.size());
  if (cos.size() != ref_cos.size()) return;
  std::vector<double> c64(cos.begin(), cos.end()), s64(sin.begin(), sin.end());
  // fp32 angles (positions < 8, inv_freq in fp32): a few ulps of an O(1) value
  check_close("vision rope cos vs rot_pos_emb", c64.data(), ref_cos.data(), c64.size(), 2e-6, 0);
  check_close("vision rope sin vs rot_pos_emb", s64.data(), ref_sin.data(), s64.size(), 2e-6, 0);
}

}  // namespace vr::test
