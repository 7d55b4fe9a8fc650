// The gated MLP both towers share: x += down(silu(gate(h)) * up(h)), run over row chunks so the two F-wide
// intermediates stay bounded (a 16k-token image would otherwise need GBs for them).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "ops/activation.h"
#include "ops/linear.h"

namespace vr {

inline void swiglu_mlp_forward(float* x, const float* h, int64_t M, int64_t D, const Linear& gate, const Linear& up,
                               const Linear& down, int64_t chunk_rows = 1024) {
  const int64_t F = gate.N;
  const int64_t chunk = std::max<int64_t>(1, std::min(chunk_rows, M));
  std::vector<float> g(size_t(chunk * F)), u(size_t(chunk * F));
  for (int64_t r0 = 0; r0 < M; r0 += chunk) {
    const int64_t m = std::min(chunk, M - r0);
    linear_forward(g.data(), h + r0 * D, gate, m);
    linear_forward(u.data(), h + r0 * D, up, m);
    swiglu_forward(g.data(), g.data(), u.data(), m * F);
    linear_forward(x + r0 * D, g.data(), down, m, /*accumulate=*/true);
  }
}

}  // namespace vr
