// The gated MLP's gate and up GEMMs with the SwiGLU fused into their oneDNN epilogues (BF16 weights, bf16
// activations; see swiglu_gemms_bf16 in ops/linear.h):
//   silu16 = bf16(silu(x16 Wg^T + bg))              gate GEMM, eltwise swish post-op, bf16 store
//   act16  = bf16((x16 Wu^T + bu) * silu16)          up GEMM, binary mul post-op, bf16 store
// Against gate/up GEMMs writing fp32 and a separate SwiGLU pass this writes 2 bf16 tensors instead of 2 fp32
// ones and skips the pass that read them back (7B prefill, 305 rows: 2 x 23 MB fp32 per layer) and the padded-row
// copies. Forward only: training keeps the unfused ops (it needs gate and up for the backward).
#include <string>

#include "core/error.h"
#include "cpu/cpu_ops.h"
#include "cpu/gemv_bf16.h"
#include "cpu/onednn_gemm.h"
#include "cpu/op_profile.h"

namespace vr::cpu {

namespace {

MatmulArgs gemm_args(const Linear& L, const uint16_t* x16, int64_t Mp) {
  MatmulArgs a;
  a.M = Mp; a.N = L.N; a.K = L.K; a.bf16 = true;
  a.A = x16; a.a_rs = L.K; a.a_cs = 1;
  a.B = L.w; a.b_rs = 1; a.b_cs = L.K;
  a.b_packed = L.packed.get();
  a.bias = L.b;
  a.ldc = L.N;
  a.c_bf16 = true;
  return a;
}

// oneDNN falls back to slow reference kernels for epilogues its brgemm cannot fuse: use only what it fuses.
bool fused_impl(const MatmulArgs& a) { return std::string(onednn_matmul_impl(a)).rfind("brg", 0) == 0; }

}  // namespace

bool swiglu_gemms_bf16(uint16_t* act16, uint16_t* silu16, const uint16_t* x16, const Linear& gate, const Linear& up,
                       int64_t M) {
  if (!onednn_available() || gemm_path() == GemmPath::Builtin || gate.dtype != DType::BF16 ||
      up.dtype != DType::BF16 || M <= gemv_bf16_max_rows())
    return false;
  const int64_t Mp = gemm_padded_rows(M), F = gate.N;
  MatmulArgs g = gemm_args(gate, x16, Mp);
  g.C = silu16;
  g.swish = true;
  MatmulArgs u = gemm_args(up, x16, Mp);
  u.C = act16;
  u.mul16 = silu16;
  if (!fused_impl(g) || !fused_impl(u)) return false;
  const std::string shape = prof::enabled() ? std::to_string(M) + "x" + std::to_string(F) + "x" + std::to_string(gate.K) : "";
  const double flop = 2.0 * double(M) * double(F) * double(gate.K);
  {
    prof::Scope sc(prof::enabled() ? "gemm bf16 " + shape + " +silu -> bf16" : "", flop);
    onednn_matmul(g);
  }
  prof::Scope sc(prof::enabled() ? "gemm bf16 " + shape + " *silu -> bf16" : "", flop);
  onednn_matmul(u);
  return true;
}

}  // namespace vr::cpu
