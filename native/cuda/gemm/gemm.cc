// GEMM dispatch: cuBLASLt when loaded, else our kernel (gemm.h).
#include "cuda/gemm/gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "cuda/gemm/cublaslt_gemm.h"
#include "cuda/gemm/cublaslt_loader.h"
#include "cuda/kernels/cuda_kernels.h"
#include "cuda/kernels/env_switch.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {
// VREFLECT_GEMM and VREFLECT_GEMV, read at the first GEMM and kept (env_switch.h), so a GEMM does not scan the
// environment each time.
EnvSwitch g_gemm_switch{"VREFLECT_GEMM", {"auto", "cublaslt", "kernel"}};
EnvSwitch g_gemv_switch{"VREFLECT_GEMV", {"auto", "off"}};
std::atomic<int64_t> g_max_span{kGemmMaxSpan};  // lowered by tests only
std::atomic<int64_t> g_split_pieces{0};
}  // namespace

int64_t gemm_operand_span(int64_t rows, int64_t cols, int64_t ld) { return rows <= 0 ? 0 : (rows - 1) * ld + cols; }

int64_t gemm_rows_per_call(const GemmArgs& g, int64_t max_span) {
  const int64_t b_span = g.trans_b ? gemm_operand_span(g.n, g.k, g.ldb) : gemm_operand_span(g.k, g.n, g.ldb);
  if (b_span > max_span) return 0;
  // A stored [m, k] (rows of C are rows of A) or, with trans_a, [k, m] (rows of C are columns of A).
  auto fits = [&](int64_t rows) {
    const int64_t a_span = g.trans_a ? gemm_operand_span(g.k, rows, g.lda) : gemm_operand_span(rows, g.k, g.lda);
    return a_span <= max_span && gemm_operand_span(rows, g.n, g.ldc) <= max_span;
  };
  if (g.m <= 0 || fits(g.m)) return g.m;
  int64_t lo = 0, hi = g.m;  // fits(lo) or lo == 0; !fits(hi): both spans grow with rows
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (fits(mid) ? lo : hi) = mid;
  }
  return lo;
}

void gemm_set_max_span_for_tests(int64_t max_span) { g_max_span.store(max_span > 0 ? max_span : kGemmMaxSpan); }
int64_t gemm_split_pieces() { return g_split_pieces.load(); }

const char* gemm_impl_name(GemmImpl impl) {
  switch (impl) {
    case GemmImpl::CublasLt: return "cublaslt";
    case GemmImpl::Kernel: return "vreflect-kernel";
    case GemmImpl::Gemv: return "vreflect-gemv";
    default: return "auto";
  }
}

GemmImpl gemm_impl_from_env() {
  constexpr GemmImpl kImpls[] = {GemmImpl::Auto, GemmImpl::CublasLt, GemmImpl::Kernel};
  return kImpls[g_gemm_switch.index()];
}

bool gemv_enabled_from_env() { return g_gemv_switch.index() == 0; }


namespace {

template <class TC>
GemmImpl run(TC* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s, GemmImpl want) {
  if (want == GemmImpl::Auto) want = gemm_impl_from_env();
  // An operand too large for one cuBLASLt call (kGemmMaxSpan): row pieces, each of which fits, or our kernel.
  if ((want == GemmImpl::Auto || want == GemmImpl::CublasLt) && g.k > 0 && g.m > 0 && g.n > 0) {
    const GemmArgs p = checked_gemm_args(g);
    const int64_t max_span = g_max_span.load(std::memory_order_relaxed);
    const int64_t rows = gemm_rows_per_call(p, max_span);
    if (rows == 0) {
      VR_CHECK(want != GemmImpl::CublasLt, "gemm: cuBLASLt was requested but an operand of m=", g.m, " n=", g.n,
               " k=", g.k, " spans more than ", max_span, " elements even one row at a time");
      gemm_kernel(C, A, B, g, s);
      return GemmImpl::Kernel;
    }
    if (rows < g.m) {
      GemmImpl used = GemmImpl::Kernel;
      for (int64_t r0 = 0; r0 < g.m; r0 += rows) {
        GemmArgs piece = p;
        piece.m = std::min(rows, g.m - r0);
        used = run(C + r0 * p.ldc, p.trans_a ? A + r0 : A + r0 * p.lda, B, piece, s, want);
        g_split_pieces.fetch_add(1, std::memory_order_relaxed);
      }
      return used;
    }
  }
  // A few rows (decode / latent steps): the bandwidth-bound skinny kernel, unless an implementation was forced
  // (VREFLECT_GEMM, or the caller's `want`) or VREFLECT_GEMV=off; it declines the cases it does not take.
  if (want == GemmImpl::Gemv || (want == GemmImpl::Auto && g.m <= kGemvMaxRows && gemv_enabled_from_env())) {
    if (gemv_linear(C, A, B, g, s)) return GemmImpl::Gemv;
    VR_CHECK(want != GemmImpl::Gemv, "gemm: the gemv kernel was requested but does not take this case (m=", g.m,
             ", k=", g.k, "; it needs 1 <= m <= ", kGemvMaxRows, ", a W[n,k] operand, k and row strides multiples "
             "of 8, 16-byte aligned operands)");
    want = GemmImpl::Auto;
  }
  if (want != GemmImpl::Kernel && g.k > 0) {  // k = 0 leaves only bias / C to write: the kernel does that
    std::string why;
    if (cublaslt_gemm(C, A, B, g, s, &why)) return GemmImpl::CublasLt;
    VR_CHECK(want != GemmImpl::CublasLt, "gemm: cuBLASLt was requested but cannot run: ", why);
  }
  gemm_kernel(C, A, B, g, s);
  return GemmImpl::Kernel;
}

}  // namespace

GemmImpl gemm(float* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s, GemmImpl want) {
  return run(C, A, B, g, s, want);
}
GemmImpl gemm(bf16* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s, GemmImpl want) {
  return run(C, A, B, g, s, want);
}

GemmImpl gemm_linear_forward(float* out, const bf16* inp, const bf16* w, const float* bias, int64_t M, int64_t N,
                             int64_t K, bool accumulate, Stream s, GemmImpl want) {
  return run(out, inp, w, linear_forward_args(M, N, K, bias, accumulate), s, want);
}
GemmImpl gemm_linear_forward(bf16* out, const bf16* inp, const bf16* w, const float* bias, int64_t M, int64_t N,
                             int64_t K, bool accumulate, Stream s, GemmImpl want) {
  return run(out, inp, w, linear_forward_args(M, N, K, bias, accumulate), s, want);
}

GemmImpl gemm_swiglu_forward(bf16* out, bf16* up_scratch, const bf16* inp, const bf16* w_gate, const bf16* w_up,
                             int64_t M, int64_t F, int64_t K, Stream s, GemmImpl want) {
  if (want == GemmImpl::Auto) want = gemm_impl_from_env();
  if ((want == GemmImpl::Gemv || (want == GemmImpl::Auto && M <= kGemvMaxRows && gemv_enabled_from_env())) &&
      gemv_swiglu(out, inp, w_gate, w_up, M, F, K, s))
    return GemmImpl::Gemv;
  VR_CHECK(up_scratch, "gemm_swiglu_forward: the unfused path needs the up scratch");
  gemm_linear_forward(out, inp, w_gate, nullptr, M, F, K, false, s, want);
  const GemmImpl used = gemm_linear_forward(up_scratch, inp, w_up, nullptr, M, F, K, false, s, want);
  swiglu_forward(out, out, up_scratch, M * F, s);
  return used;
}

void gemm_linear_backward(float* dinp, float* dweight, float* dbias, const bf16* dout, const bf16* inp,
                          const bf16* w, int64_t M, int64_t N, int64_t K, Stream s, GemmImpl want) {
  if (dinp) run(dinp, dout, w, linear_backward_input_args(M, N, K), s, want);
  if (dweight) run(dweight, dout, inp, linear_backward_weight_args(M, N, K), s, want);
  if (dbias) bias_grad(dbias, dout, M, N, s);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
