// The gated MLP both towers share: x += down(silu(gate(h)) * up(h)), run over row chunks so the two F-wide
// intermediates stay bounded (a 16k-token image would otherwise need GBs for them).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "cpu/op_profile.h"
#include "ops/activation.h"
#include "ops/linear.h"

namespace vr {

// `scratch` is reused across calls (one model layer after another) so the F-wide buffers are allocated, and their
// pages faulted in, once per forward rather than once per layer. `h16`, when given, is h already rounded to bf16
// (BF16 weights): gate and up read it, and the SwiGLU writes bf16 straight for the down projection, so no
// activation is rounded twice.
inline void swiglu_mlp_forward(float* x, const float* h, int64_t M, int64_t D, const Linear& gate, const Linear& up,
                               const Linear& down, std::vector<float>& scratch, int64_t chunk_rows = 1024,
                               const uint16_t* h16 = nullptr) {
  const int64_t F = gate.N;
  const int64_t chunk = std::max<int64_t>(1, std::min(chunk_rows, M));
  const int64_t need = 2 * chunk * F + (h16 ? (chunk * F + 1) / 2 : 0);
  if (int64_t(scratch.size()) < need) scratch.resize(size_t(need));
  float* g = scratch.data();
  float* u = g + chunk * F;
  uint16_t* g16 = reinterpret_cast<uint16_t*>(u + chunk * F);
  for (int64_t r0 = 0; r0 < M; r0 += chunk) {
    const int64_t m = std::min(chunk, M - r0);
    if (h16) {
      linear_forward_bf16in(g, h16 + r0 * D, gate, m);
      linear_forward_bf16in(u, h16 + r0 * D, up, m);
      {
        prof::Scope sc("swiglu (-> bf16)");
        swiglu_forward_bf16(g16, g, u, m * F);
      }
      linear_forward_bf16in(x + r0 * D, g16, down, m, /*accumulate=*/true);
      continue;
    }
    linear_forward(g, h + r0 * D, gate, m);
    linear_forward(u, h + r0 * D, up, m);
    {
      prof::Scope sc("swiglu");
      swiglu_forward(g, g, u, m * F);
    }
    linear_forward(x + r0 * D, g, down, m, /*accumulate=*/true);
  }
}

}  // namespace vr
