// RoPE forward/backward against the fp64 reference, with a strided (fused) layout and tables whose halves
// differ (the backward must use the transposed rotation, not just negate the angle).
#include <cmath>
#include <string>

#include "ops/rope.h"
#include "tests/harness.h"
#include "tests/reference.h"

namespace vr::test {

namespace {

void rope_case(int64_t T, int H, int D, int64_t stride, bool equal_halves, uint64_t seed) {
  Rng rng(seed);
  const auto x0 = rng.vec(size_t(T * stride), -2, 2);
  std::vector<float> cs(static_cast<size_t>(T * D)), sn(static_cast<size_t>(T * D));
  for (int64_t t = 0; t < T; t++)
    for (int i = 0; i < D; i++) {
      const int pair = i % (D / 2);
      const double ang = equal_halves ? t * std::pow(10000.0, -2.0 * pair / D) : rng.uniform(-3, 3);
      cs[size_t(t * D + i)] = float(std::cos(ang));
      sn[size_t(t * D + i)] = float(std::sin(ang));
    }
  const std::string name = "rope T=" + std::to_string(T) + " H=" + std::to_string(H) + " D=" + std::to_string(D) +
                           " stride=" + std::to_string(stride) + (equal_halves ? "" : " (unequal halves)");
  for (int bwd = 0; bwd < 2; bwd++) {
    std::vector<float> x = x0;
    if (bwd) rope_backward(x.data(), cs.data(), sn.data(), T, H, D, stride);
    else rope_forward(x.data(), cs.data(), sn.data(), T, H, D, stride);
    std::vector<double> r = to_double(x0);
    ref::rope<double>(r, to_double(cs), to_double(sn), T, H, D, stride, bwd);
    std::vector<float> n = x0;
    ref::rope<float>(n, cs, sn, T, H, D, stride, bwd);
    check_rule(name + (bwd ? " backward" : " forward"), x.data(), n.data(), r.data(), x.size(), 1e-6);
  }
  // Backward is the adjoint of forward: <R x, y> == <x, R^T y>.
  std::vector<double> y = to_double(rng.vec(static_cast<size_t>(T * stride)));
  std::vector<double> rx = to_double(x0), rty = y;
  ref::rope<double>(rx, to_double(cs), to_double(sn), T, H, D, stride, false);
  ref::rope<double>(rty, to_double(cs), to_double(sn), T, H, D, stride, true);
  // only the rotated columns count: untouched columns are identity in both
  check_fd(name + " reference adjoint <Rx,y> vs <x,R^T y>", dot(rx, y), dot(to_double(x0), rty), 1e-12);
}

}  // namespace

VR_TEST(rope_cases) {
  rope_case(5, 4, 16, 64, true, 1);
  rope_case(9, 16, 80, 3 * 16 * 80, true, 2);     // ViT q inside fused qkv
  rope_case(7, 28, 128, 28 * 128, true, 3);
  rope_case(6, 3, 8, 30, false, 4);
  expect_throw("rope odd head dim", [] {
    std::vector<float> x(12), c(3), s(3);
    rope_forward(x.data(), c.data(), s.data(), 1, 4, 3, 12);
  });
}

}  // namespace vr::test
