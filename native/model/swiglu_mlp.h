// The gated MLP both towers share: x += down(silu(gate(h)) * up(h)), run over row chunks so the two F-wide
// intermediates stay bounded (a 16k-token image would otherwise need GBs for them).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/grow.h"
#include "cpu/op_profile.h"
#include "ops/activation.h"
#include "ops/linear.h"

namespace vr {

// Scratch of swiglu_mlp_forward, reused across calls (one model layer after another) so the F-wide buffers are
// allocated, and their pages faulted in, once per forward rather than once per layer.
struct MLPScratch {
  std::vector<float> gu;         // gate and up outputs of one row chunk, [2, chunk, F]
  std::vector<uint16_t> act16;   // the SwiGLU in bf16 for the down projection (h16 given), [chunk, F]
  std::vector<uint16_t> silu16;  // silu(gate) in bf16 (fused path), [chunk, F]
};

// `h16`, when given, is h already rounded to bf16 (BF16 weights): gate and up read it, and the SwiGLU writes bf16
// straight for the down projection, so no activation is rounded twice. Where oneDNN fuses it, the SwiGLU runs in
// the gate/up GEMM epilogues (swiglu_gemms_bf16) and no fp32 gate/up tensor exists.
// `rows_padded`: h16 and x have linear_padded_rows(M) rows (h16's extra rows finite), so no GEMM copies rows.
inline void swiglu_mlp_forward(float* x, const float* h, int64_t M, int64_t D, const Linear& gate, const Linear& up,
                               const Linear& down, MLPScratch& scratch, int64_t chunk_rows = 1024,
                               const uint16_t* h16 = nullptr, bool rows_padded = false) {
  const int64_t F = gate.N;
  const int64_t chunk = std::max<int64_t>(1, std::min(chunk_rows, M));
  const int64_t chunk_p = linear_padded_rows(chunk);
  const int64_t h16_rows = rows_padded ? linear_padded_rows(M) : M;
  float* g = nullptr;
  float* u = nullptr;
  uint16_t* g16 = h16 ? grow(scratch.act16, chunk_p * F) : nullptr;
  for (int64_t r0 = 0; r0 < M; r0 += chunk) {
    const int64_t m = std::min(chunk, M - r0);
    const bool last = r0 + m == M;
    if (h16 && r0 + linear_padded_rows(m) <= h16_rows &&
        swiglu_gemms_bf16(g16, grow(scratch.silu16, chunk_p * F), h16 + r0 * D, gate, up, m)) {
      linear_forward_bf16in(x + r0 * D, g16, down, m, /*accumulate=*/true, /*padded=*/rows_padded && last);
      continue;
    }
    if (!g) {
      g = grow(scratch.gu, 2 * chunk * F);
      u = g + chunk * F;
    }
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
