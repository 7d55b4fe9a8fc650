// vreflect_cuda_bench: GPU side (bench_runner.h).
#include "cuda/bench/bench_runner.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>

#include "core/dtype.h"
#include "core/error.h"
#include "cuda/bench/bench_elementwise.h"
#include "cuda/gemm/gemm.h"
#include "cuda/kernels/cuda_kernels.h"

namespace vr::bench {

namespace {

void ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("cuda: ", what, ": ", cudaGetErrorString(e));
}

// A timing event, destroyed on every exit (a failed run throws out of the timing loop).
struct Event {
  cudaEvent_t e = nullptr;
  Event() { ok(cudaEventCreate(&e), "cudaEventCreate"); }
  ~Event() { cudaEventDestroy(e); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
};

// VREFLECT_ATTENTION_TILE_FWD or _BWD (or VREFLECT_ELEMENTWISE) set for one case and restored after it (the kernels
// read their switches once; cuda::env_switches_changed makes them read them again).
class TileEnv {
 public:
  TileEnv(const char* name, const std::string& value) : name_(name) {
    const char* old = std::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    setenv(name, value.c_str(), 1);
    cuda::env_switches_changed();
  }
  ~TileEnv() {
    if (had_) setenv(name_, old_.c_str(), 1);
    else unsetenv(name_);
    cuda::env_switches_changed();
  }
  TileEnv(const TileEnv&) = delete;
  TileEnv& operator=(const TileEnv&) = delete;

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

}  // namespace

Runner::Runner() : slots_(16) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) fail("vreflect_cuda_bench: no usable GPU: ", cudaGetErrorString(e));
  if (n == 0) fail("vreflect_cuda_bench: no GPU found");
  cudaDeviceProp p{};
  ok(cudaGetDeviceProperties(&p, 0), "cudaGetDeviceProperties");
  int drv = 0;
  ok(cudaDriverGetVersion(&drv), "cudaDriverGetVersion");
  dev_.name = p.name;
  dev_.cc = std::to_string(p.major) + "." + std::to_string(p.minor);
  dev_.memory_bytes = p.totalGlobalMem;
  dev_.smem_optin_bytes = p.sharedMemPerBlockOptin;
  dev_.driver = std::to_string(drv / 1000) + "." + std::to_string((drv % 1000) / 10);
}

Runner::~Runner() {
  for (Slot& s : slots_) cudaFree(s.p);
}

void* Runner::buffer(int i, size_t bytes) {
  Slot& s = slots_.at(size_t(i));
  if (s.bytes >= bytes) return s.p;
  cudaFree(s.p);
  s.p = nullptr, s.bytes = 0;
  ok(cudaMalloc(&s.p, bytes), "cudaMalloc");
  s.bytes = bytes;
  // Random bf16 in [-1, 1): one 2 MiB host pattern copied over the whole buffer.
  static std::vector<uint16_t> pattern = [] {
    std::vector<uint16_t> v(size_t(1) << 20);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (uint16_t& b : v) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      b = f32_to_bf16(float(double(x >> 11) / double(1ull << 53) * 2.0 - 1.0));
    }
    return v;
  }();
  const size_t chunk = pattern.size() * sizeof(uint16_t);
  for (size_t off = 0; off < bytes; off += chunk)
    ok(cudaMemcpy(static_cast<char*>(s.p) + off, pattern.data(), std::min(chunk, bytes - off), cudaMemcpyHostToDevice),
       "cudaMemcpy");
  return s.p;
}

void* Runner::zeros(int i, size_t bytes) {
  void* p = buffer(i, bytes);
  ok(cudaMemset(p, 0, bytes), "cudaMemset");
  return p;
}

Measurement Runner::run(const Case& c, const Options& o) {
  using cuda::bf16;
  Measurement m;
  try {
    std::optional<TileEnv> tile_env;  // a listed attention tile variant, for this case only
    std::function<void()> once;
    const size_t b2 = sizeof(uint16_t);
    if (c.kernel == "attention_fwd" || c.kernel == "attention_bwd") {
      const int64_t S = c.get("seq_q");
      cuda::AttnArgs a;
      a.Hq = kHeadsQ, a.Hkv = kHeadsKV, a.D = kHeadDim, a.scale = 1.0f / std::sqrt(float(kHeadDim));
      a.causal = c.causal == 1, a.nseq = 1, a.max_seqlen_q = a.max_seqlen_k = int(S), a.total_q = S;
      a.q_stride = a.o_stride = int64_t(kHeadsQ) * kHeadDim, a.k_stride = a.v_stride = int64_t(kHeadsKV) * kHeadDim;
      const int32_t cu_host[2] = {0, int32_t(S)};
      auto* cu = static_cast<int32_t*>(buffer(0, sizeof cu_host));
      ok(cudaMemcpy(cu, cu_host, sizeof cu_host, cudaMemcpyHostToDevice), "cudaMemcpy");
      a.cu_q = a.cu_k = cu;
      const size_t nq = size_t(S) * kHeadsQ * kHeadDim, nk = size_t(S) * kHeadsKV * kHeadDim;
      auto* q = static_cast<bf16*>(buffer(1, nq * b2));
      auto* k = static_cast<bf16*>(buffer(2, nk * b2));
      auto* v = static_cast<bf16*>(buffer(3, nk * b2));
      auto* out = static_cast<bf16*>(buffer(4, nq * b2));
      auto* lse = static_cast<float*>(buffer(5, size_t(kHeadsQ) * S * sizeof(float)));
      // Times what the dispatch picks (VREFLECT_ATTENTION, else wgmma on a checked sm_90 / tensor cores on sm_80+),
      // or the listed variant: a tc tile forces the tensor-core path, a "wgmma:" one the wgmma forward.
      const bool bwd = c.kernel == "attention_bwd";
      const bool wg_tile = c.tile.rfind("wgmma:", 0) == 0;
      const cuda::AttnKernelPath path = wg_tile            ? cuda::AttnKernelPath::Wgmma
                                        : !c.tile.empty() ? cuda::AttnKernelPath::TensorCore
                                                          : cuda::AttnKernelPath::Auto;
      const cuda::AttnKernelPath got = cuda::attention_kernel_resolve(path, a.D, true);
      // The wgmma path's backward is the wgmma one unless VREFLECT_ATTENTION_TILE_WGMMA_BWD=tc.
      if (wg_tile) tile_env.emplace(bwd ? "VREFLECT_ATTENTION_TILE_WGMMA_BWD" : "VREFLECT_ATTENTION_TILE_WGMMA", c.tile.substr(6));
      if (got == cuda::AttnKernelPath::Wgmma && (!bwd || cuda::attention_wgmma_backward_tile() != "tc")) {
        m.impl = "vreflect-wgmma";
        const std::string t = bwd ? cuda::attention_wgmma_backward_tile() : cuda::attention_wgmma_tile();
        const std::string first = bwd ? cuda::attention_wgmma_backward_tiles().front() : cuda::attention_wgmma_tiles().front();
        m.tile = "wgmma:" + t;
        if (wg_tile || t != first) m.impl += "/" + t;
      } else if (got != cuda::AttnKernelPath::Scalar) {
        m.impl = "vreflect-tc";
        // The variant that runs: the case's (--attention-tiles), else whatever VREFLECT_ATTENTION_TILE_* picks (auto:
        // the first of the preference that fits this GPU's shared memory); named in impl unless it is the first of
        // the preference, so variants of one case - and a GPU's fallback - stay apart in merged reports.
        if (!c.tile.empty()) tile_env.emplace(bwd ? "VREFLECT_ATTENTION_TILE_BWD" : "VREFLECT_ATTENTION_TILE_FWD", c.tile);
        m.tile = cuda::attention_tc_tile(bwd);
        if (!c.tile.empty() || m.tile != cuda::attention_tc_tile_preference(bwd).front()) m.impl += "/" + m.tile;
      } else {
        m.impl = "vreflect-scalar";
        if (!c.tile.empty())
          fail("tile variant ", c.tile, " needs the tensor-core attention (VREFLECT_ATTENTION is scalar, or no sm_80+)");
      }
      if (c.kernel == "attention_fwd") {
        once = [=] { cuda::attention_forward(out, lse, q, k, v, a, nullptr, path); };
      } else {
        cuda::attention_forward(out, lse, q, k, v, a);  // the backward needs out and lse
        auto* dout = static_cast<bf16*>(buffer(6, nq * b2));
        auto* dq = static_cast<bf16*>(zeros(7, nq * b2));
        auto* dk = static_cast<bf16*>(zeros(8, nk * b2));
        auto* dv = static_cast<bf16*>(zeros(9, nk * b2));
        once = [=] { cuda::attention_backward(dq, dk, dv, dout, out, lse, q, k, v, a, nullptr, path); };
      }
    } else if (c.kernel == "attention_decode") {
      const int64_t N = c.get("seq_k");
      cuda::AttnArgs a;
      a.Hq = kHeadsQ, a.Hkv = kHeadsKV, a.D = kHeadDim, a.scale = 1.0f / std::sqrt(float(kHeadDim));
      a.causal = true, a.nseq = 1, a.max_seqlen_q = 1, a.max_seqlen_k = int(N), a.total_q = 1;
      a.q_stride = a.o_stride = int64_t(kHeadsQ) * kHeadDim, a.k_stride = a.v_stride = int64_t(kHeadsKV) * kHeadDim;
      const int32_t cu_host[4] = {0, 1, 0, int32_t(N)};
      auto* cu = static_cast<int32_t*>(buffer(0, sizeof cu_host));
      ok(cudaMemcpy(cu, cu_host, sizeof cu_host, cudaMemcpyHostToDevice), "cudaMemcpy");
      a.cu_q = cu, a.cu_k = cu + 2;
      const size_t nq = size_t(kHeadsQ) * kHeadDim, nk = size_t(N) * kHeadsKV * kHeadDim;
      auto* q = static_cast<bf16*>(buffer(1, nq * b2));
      auto* k = static_cast<bf16*>(buffer(2, nk * b2));
      auto* v = static_cast<bf16*>(buffer(3, nk * b2));
      auto* out = static_cast<bf16*>(buffer(4, nq * b2));
      auto* lse = static_cast<float*>(buffer(5, size_t(kHeadsQ) * sizeof(float)));
      if (c.impl == "split-kv") {
        const int splits = cuda::attention_decode_splits(N, kHeadsKV, cuda::device_sm_count());
        const size_t wsf = cuda::attention_decode_workspace_floats(kHeadsQ, 1, kHeadDim, splits);
        auto* ws = static_cast<float*>(buffer(6, wsf * sizeof(float)));
        once = [=] { cuda::attention_decode(out, lse, q, k, v, a, splits, ws, wsf); };
      } else {
        once = [=] { cuda::attention_forward(out, lse, q, k, v, a); };
      }
    } else if (c.kernel == "cross_attention_fwd" || c.kernel == "cross_attention_bwd") {
      cuda::CrossAttnArgs a;
      a.L = int(c.get("items")), a.Nq = kCrossQueries, a.N = int(c.get("keys")), a.H = kCrossHeads;
      a.D = kCrossHeadDim, a.scale = 1.0f / std::sqrt(float(kCrossHeadDim));
      a.q_stride = a.k_stride = a.v_stride = int64_t(kCrossHeads) * kCrossHeadDim;
      const size_t nq = size_t(a.L) * a.Nq * a.q_stride, nk = size_t(a.L) * a.N * a.k_stride;
      auto* q = static_cast<bf16*>(buffer(1, nq * b2));
      auto* k = static_cast<bf16*>(buffer(2, nk * b2));
      auto* v = static_cast<bf16*>(buffer(3, nk * b2));
      auto* out = static_cast<bf16*>(buffer(4, nq * b2));
      auto* lse = static_cast<float*>(buffer(5, size_t(a.L) * a.H * a.Nq * sizeof(float)));
      if (c.kernel == "cross_attention_fwd") {
        once = [=] { cuda::cross_attention_forward(out, lse, nullptr, q, k, v, nullptr, a); };
      } else {
        cuda::cross_attention_forward(out, lse, nullptr, q, k, v, nullptr, a);
        auto* dout = static_cast<bf16*>(buffer(6, nq * b2));
        auto* dq = static_cast<bf16*>(zeros(7, nq * b2));
        auto* dk = static_cast<bf16*>(zeros(8, nk * b2));
        auto* dv = static_cast<bf16*>(zeros(9, nk * b2));
        once = [=] { cuda::cross_attention_backward(dq, dk, dv, dout, nullptr, out, lse, q, k, v, nullptr, a); };
      }
    } else if (c.kernel == "gemm") {
      const int64_t M = c.get("M"), N = c.get("N"), K = c.get("K");
      auto* A = static_cast<bf16*>(buffer(10, size_t(M * K) * b2));
      auto* W = static_cast<bf16*>(buffer(11, size_t(N * K) * b2));
      auto* C = static_cast<bf16*>(buffer(12, size_t(M * N) * b2));
      const cuda::GemmImpl impl = c.impl == "cublaslt"        ? cuda::GemmImpl::CublasLt
                                  : c.impl == "vreflect-gemv" ? cuda::GemmImpl::Gemv
                                                              : cuda::GemmImpl::Kernel;
      if (c.impl == "vreflect-gemv-swiglu")  // W = [W_gate; W_up], each [N / 2, K]; out [M, N / 2]
        once = [=] { cuda::gemm_swiglu_forward(C, nullptr, A, W, W + (N / 2) * K, M, N / 2, K, nullptr, cuda::GemmImpl::Gemv); };
      else
        once = [=] { cuda::gemm_linear_forward(C, A, W, nullptr, M, N, K, false, nullptr, impl); };
    } else if (is_elementwise(c.kernel)) {
      // The case's path, for this case only (TileEnv restores the variable; the kernels read it on every call).
      tile_env.emplace("VREFLECT_ELEMENTWISE", c.impl == "vreflect-scalar" ? "scalar" : "vector");
      once = elementwise_run(c, [this](int i, size_t bytes) { return buffer(i, bytes); });
      if (c.impl == "vreflect-vec16") {  // say so when the 16-byte path was not taken (alignment, sizes)
        const int64_t before = cuda::elementwise_vector_calls();
        once();
        ok(cudaDeviceSynchronize(), c.kernel.c_str());
        if (cuda::elementwise_vector_calls() == before) m.impl = "vreflect-scalar(fallback)";
      }
    } else {
      fail("unknown bench kernel ", c.kernel);
    }
    ok(cudaDeviceSynchronize(), "setup");

    const Event t0, t1;
    auto timed = [&] {
      ok(cudaEventRecord(t0.e), "cudaEventRecord");
      once();
      ok(cudaEventRecord(t1.e), "cudaEventRecord");
      ok(cudaEventSynchronize(t1.e), c.kernel.c_str());
      float ms = 0;
      ok(cudaEventElapsedTime(&ms, t0.e, t1.e), "cudaEventElapsedTime");
      return double(ms);
    };
    // Warm-up runs (the first also sizes the rest: a case gets about max_case_seconds of timed runs).
    double first = 0;
    for (int i = 0; i < std::max(1, o.warmup); i++) {
      first = timed();
      if (first * 1e-3 > o.max_case_seconds) break;
    }
    const int reps = std::max(1, std::min(o.reps, int(o.max_case_seconds / std::max(first * 1e-3, 1e-9))));
    std::vector<double> t;
    for (int i = 0; i < reps; i++) t.push_back(timed());
    std::sort(t.begin(), t.end());
    m.ms = t.size() % 2 ? t[t.size() / 2] : 0.5 * (t[t.size() / 2 - 1] + t[t.size() / 2]);
    m.reps = reps;
  } catch (const std::exception& e) {
    m.error = e.what();
    (void)cudaGetLastError();
  }
  return m;
}

}  // namespace vr::bench
