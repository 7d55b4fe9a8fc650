// GEMM dispatch: cuBLASLt when loaded, else our kernel (gemm.h).
#include "cuda/gemm/gemm.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "cuda/gemm/cublaslt_gemm.h"
#include "cuda/gemm/cublaslt_loader.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {
// VREFLECT_GEMM as the first GEMM read it (-1: not read yet), so a GEMM does not scan the environment each time.
std::atomic<int> g_env_impl{-1};
// VREFLECT_GEMV as first read: 1 auto (the skinny kernel for the rows it takes), 0 off, -1 not read yet.
std::atomic<int> g_env_gemv{-1};
}  // namespace

const char* gemm_impl_name(GemmImpl impl) {
  switch (impl) {
    case GemmImpl::CublasLt: return "cublaslt";
    case GemmImpl::Kernel: return "vreflect-kernel";
    case GemmImpl::Gemv: return "vreflect-gemv";
    default: return "auto";
  }
}

GemmImpl gemm_impl_from_env() {
  const char* v = std::getenv("VREFLECT_GEMM");
  if (!v || !*v || std::string(v) == "auto") return GemmImpl::Auto;
  if (std::string(v) == "cublaslt") return GemmImpl::CublasLt;
  if (std::string(v) == "kernel") return GemmImpl::Kernel;
  fail("VREFLECT_GEMM=", v, " is not one of auto, cublaslt, kernel");
}

bool gemv_enabled_from_env() {
  const char* v = std::getenv("VREFLECT_GEMV");
  if (!v || !*v || std::string(v) == "auto") return true;
  if (std::string(v) == "off") return false;
  fail("VREFLECT_GEMV=", v, " is not one of auto, off");
}

void gemm_env_changed() {
  g_env_impl.store(-1, std::memory_order_relaxed);
  g_env_gemv.store(-1, std::memory_order_relaxed);
}

namespace {

GemmImpl env_impl() {
  const int cached = g_env_impl.load(std::memory_order_relaxed);
  if (cached >= 0) return GemmImpl(cached);
  const GemmImpl impl = gemm_impl_from_env();  // a bad value throws here and stays unread: every GEMM says so
  g_env_impl.store(int(impl), std::memory_order_relaxed);
  return impl;
}

bool env_gemv() {
  const int cached = g_env_gemv.load(std::memory_order_relaxed);
  if (cached >= 0) return cached == 1;
  const bool on = gemv_enabled_from_env();
  g_env_gemv.store(on ? 1 : 0, std::memory_order_relaxed);
  return on;
}

template <class TC>
GemmImpl run(TC* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s, GemmImpl want) {
  if (want == GemmImpl::Auto) want = env_impl();
  // A few rows (decode / latent steps): the bandwidth-bound skinny kernel, unless an implementation was forced
  // (VREFLECT_GEMM, or the caller's `want`) or VREFLECT_GEMV=off; it declines the cases it does not take.
  if (want == GemmImpl::Gemv || (want == GemmImpl::Auto && g.m <= kGemvMaxRows && env_gemv())) {
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

void gemm_linear_backward(float* dinp, float* dweight, float* dbias, const bf16* dout, const bf16* inp,
                          const bf16* w, int64_t M, int64_t N, int64_t K, Stream s, GemmImpl want) {
  if (dinp) run(dinp, dout, w, linear_backward_input_args(M, N, K), s, want);
  if (dweight) run(dweight, dout, inp, linear_backward_weight_args(M, N, K), s, want);
  if (dbias) bias_grad(dbias, dout, M, N, s);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
