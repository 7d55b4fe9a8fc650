// cuBLASLt GEMM with our row-major contract (cublaslt_gemm.h).
#include "cuda/gemm/cublaslt_gemm.h"

#include "core/error.h"
#include "core/lru_map.h"
#include "cuda/gemm/cublaslt_loader.h"

#if defined(VR_CUDA_EMULATED)

namespace vr::cuda {
inline namespace VR_CUDA_ABI {
bool cublaslt_gemm(float*, const bf16*, const bf16*, const GemmArgs&, Stream, std::string* why) {
  if (why) *why = "cuBLASLt does not run under the CPU emulator";
  return false;
}
bool cublaslt_gemm(bf16*, const bf16*, const bf16*, const GemmArgs&, Stream, std::string* why) {
  if (why) *why = "cuBLASLt does not run under the CPU emulator";
  return false;
}
}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda

#else

#include <cuda_runtime_api.h>

#include <map>
#include <mutex>
#include <tuple>

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr size_t kWorkspaceBytes = size_t(32) << 20;  // what NVIDIA recommends for Hopper
// Plans kept, least recently used dropped first. m is part of the key and follows the prompt length, so a
// long-lived process (eval over thousands of prompts) would otherwise keep a plan per length and shape forever.
// One m needs a few dozen plans (the LLM's and the ViT's Linears, forward and backward): this keeps many lengths.
constexpr size_t kMaxPlans = 512;

// (device, m, n, k, lda, ldb, ldc, trans_a, trans_b, accumulate, has_bias, c_bf16, align A, B, C)
using PlanKey = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, bool, bool, bool,
                           int, int, int>;

struct Plan {
  bool ok = false;
  std::string why;  // when !ok: the case cuBLASLt cannot do (remembered, so the heuristic is asked once)
  lt::MatmulDesc desc = nullptr;
  lt::MatrixLayout a = nullptr, b = nullptr, c = nullptr;
  lt::MatmulAlgo algo{};
};

// One handle per device, one workspace per (device, stream). cuBLASLt's kernels use the workspace as scratch
// while they run, so two streams that can run at the same time must not share one (scale audit: the decoder's
// stream of one GpuQwenVL beside another model's, or beside a non-blocking stream). Work on one stream is ordered,
// so a stream's own GEMMs may share its workspace; 32 MiB per stream that runs cuBLASLt GEMMs (usually two: the
// legacy stream of the ViT / trainer and the decoder's).
struct DeviceState {
  lt::Handle handle = nullptr;
  std::map<Stream, void*> workspaces;
  std::string error;  // cublasLtCreate failed: cuBLASLt unusable on this device
};

std::mutex g_mu;
std::map<int, DeviceState> g_devices;
LruMap<PlanKey, Plan> g_plans(kMaxPlans);

std::string status_text(const lt::Api& api, lt::Status st) {
  const char* s = api.GetStatusString ? api.GetStatusString(st) : nullptr;
  return s ? std::string(s) : "cublasStatus " + std::to_string(st);
}

int alignment(const void* p) {  // largest power of two (<= 256) dividing the address
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  int al = 1;
  while (al < 256 && a % uintptr_t(al * 2) == 0) al *= 2;
  return al;
}

DeviceState& device_state(const lt::Api& api, int dev) {
  DeviceState& d = g_devices[dev];
  if (d.handle || !d.error.empty()) return d;
  const lt::Status st = api.Create(&d.handle);
  if (st != lt::kStatusSuccess) {
    d.handle = nullptr;
    d.error = "cublasLtCreate failed: " + status_text(api, st);
  }
  return d;
}

// Stream s's workspace on device d, allocated at its first GEMM; null with *why set when it cannot be (no memory,
// or s is being captured into a CUDA graph, where cudaMalloc is not allowed: that GEMM then runs on our kernel).
void* stream_workspace(DeviceState& d, Stream s, std::string* why) {
  auto it = d.workspaces.find(s);
  if (it != d.workspaces.end()) return it->second;
  cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;  // (the legacy stream is never captured)
  if (s && cudaStreamIsCapturing(s, &cap) != cudaSuccess) (void)cudaGetLastError();
  if (cap != cudaStreamCaptureStatusNone) {
    *why = "no cuBLASLt workspace for this stream yet, and it is being captured (no allocation allowed)";
    return nullptr;
  }
  void* w = nullptr;
  if (cudaMalloc(&w, kWorkspaceBytes) != cudaSuccess) {
    (void)cudaGetLastError();
    *why = "no device memory for a 32 MiB cuBLASLt workspace";
    return nullptr;
  }
  d.workspaces[s] = w;
  return w;
}

void destroy_plan(const lt::Api& api, Plan& p) {
  if (p.c) api.MatrixLayoutDestroy(p.c);
  if (p.b) api.MatrixLayoutDestroy(p.b);
  if (p.a) api.MatrixLayoutDestroy(p.a);
  if (p.desc) api.MatmulDescDestroy(p.desc);
  p = Plan{};
}

// Descriptors and algorithm for one case. The bias pointer is set per call.
// g's strides are resolved (checked_gemm_args).
Plan make_plan(const lt::Api& api, lt::Handle h, const GemmArgs& g, int c_type, int align_a, int align_b,
               int align_c) {
  Plan p;
  auto ok = [&](lt::Status st, const char* what) {
    if (st == lt::kStatusSuccess) return true;
    p.why = std::string(what) + ": " + status_text(api, st);
    return false;
  };
  // Column-major view: D^T[n, m] = op(B)^T op(A)^T; cuBLASLt's "A" is our B and its "B" is our A.
  const int32_t ta = g.trans_b ? lt::kOpT : lt::kOpN, tb = g.trans_a ? lt::kOpT : lt::kOpN;
  const uint32_t epi = g.bias ? lt::kEpilogueBias : lt::kEpilogueDefault;
  const int32_t bias_type = lt::kR32F;
  if (!ok(api.MatmulDescCreate(&p.desc, lt::kCompute32F, lt::kR32F), "cublasLtMatmulDescCreate") ||
      !ok(api.MatmulDescSetAttribute(p.desc, lt::kDescTransA, &ta, sizeof ta), "TRANSA") ||
      !ok(api.MatmulDescSetAttribute(p.desc, lt::kDescTransB, &tb, sizeof tb), "TRANSB") ||
      !ok(api.MatmulDescSetAttribute(p.desc, lt::kDescEpilogue, &epi, sizeof epi), "EPILOGUE") ||
      (g.bias && !ok(api.MatmulDescSetAttribute(p.desc, lt::kDescBiasDataType, &bias_type, sizeof bias_type),
                     "BIAS_DATA_TYPE")))
    return p;
  const uint64_t a_rows = g.trans_b ? g.k : g.n, a_cols = g.trans_b ? g.n : g.k;
  const uint64_t b_rows = g.trans_a ? g.m : g.k, b_cols = g.trans_a ? g.k : g.m;
  if (!ok(api.MatrixLayoutCreate(&p.a, lt::kR16BF, a_rows, a_cols, g.ldb), "layout A") ||
      !ok(api.MatrixLayoutCreate(&p.b, lt::kR16BF, b_rows, b_cols, g.lda), "layout B") ||
      !ok(api.MatrixLayoutCreate(&p.c, c_type, uint64_t(g.n), uint64_t(g.m), g.ldc), "layout C"))
    return p;
  lt::Preference pref = nullptr;
  if (!ok(api.MatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate")) return p;
  const uint64_t ws = kWorkspaceBytes;
  const uint32_t al_a = uint32_t(align_b), al_b = uint32_t(align_a), al_c = uint32_t(align_c);  // swapped roles
  api.MatmulPreferenceSetAttribute(pref, lt::kPrefMaxWorkspaceBytes, &ws, sizeof ws);
  api.MatmulPreferenceSetAttribute(pref, lt::kPrefMinAlignmentA, &al_a, sizeof al_a);
  api.MatmulPreferenceSetAttribute(pref, lt::kPrefMinAlignmentB, &al_b, sizeof al_b);
  api.MatmulPreferenceSetAttribute(pref, lt::kPrefMinAlignmentC, &al_c, sizeof al_c);
  api.MatmulPreferenceSetAttribute(pref, lt::kPrefMinAlignmentD, &al_c, sizeof al_c);
  lt::HeuristicResult res{};
  int found = 0;
  const lt::Status st = api.MatmulAlgoGetHeuristic(h, p.desc, p.a, p.b, p.c, p.c, pref, 1, &res, &found);
  api.MatmulPreferenceDestroy(pref);
  if (st != lt::kStatusSuccess || found < 1) {
    p.why = "cuBLASLt has no algorithm for m=" + std::to_string(g.m) + " n=" + std::to_string(g.n) +
            " k=" + std::to_string(g.k) + (st != lt::kStatusSuccess ? " (" + status_text(api, st) + ")" : "");
    return p;
  }
  p.algo = res.algo;
  p.ok = true;
  return p;
}

bool run(void* C, int c_type, const bf16* A, const bf16* B, const GemmArgs& args, Stream s, std::string* why) {
  auto say = [&](const std::string& w) {
    if (why) *why = w;
    return false;
  };
  const lt::Api* api = cublaslt_api();
  if (!api) return say(cublaslt_info().error);
  const GemmArgs g = checked_gemm_args(args);
  if (g.m == 0 || g.n == 0) return true;
  if (g.k == 0) return say("k = 0 (nothing to multiply): left to the kernel, which writes bias / C");
  VR_CHECK(C && A && B, "gemm: null matrix pointer");
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return say("no CUDA device");
  }
  std::lock_guard<std::mutex> lock(g_mu);
  DeviceState& d = device_state(*api, dev);
  if (!d.error.empty()) return say(d.error);
  std::string ws_why;
  void* const workspace = stream_workspace(d, s, &ws_why);
  if (!workspace) return say(ws_why);
  const int align_a = alignment(A), align_b = alignment(B), align_c = alignment(C);
  const PlanKey key{dev,       g.m,       g.n,          g.k,       g.lda,   g.ldb,   g.ldc,  g.trans_a,
                    g.trans_b, g.accumulate, g.bias != nullptr, c_type == lt::kR16BF, align_a, align_b, align_c};
  // An evicted plan's descriptors can go at once: cublasLtMatmul reads them on the host, when it enqueues.
  const Plan* cached = g_plans.find(key);
  const Plan& p = cached ? *cached
                         : g_plans.insert(key, make_plan(*api, d.handle, g, c_type, align_a, align_b, align_c),
                                          [&](Plan& old) { destroy_plan(*api, old); });
  if (!p.ok) return say(p.why);
  if (g.bias) {
    const void* bias = g.bias;
    const lt::Status st = api->MatmulDescSetAttribute(p.desc, lt::kDescBiasPointer, &bias, sizeof bias);
    VR_CHECK(st == lt::kStatusSuccess, "cuBLASLt: setting the bias pointer failed: ", status_text(*api, st));
  }
  const float alpha = 1.0f, beta = g.accumulate ? 1.0f : 0.0f;
  const lt::Status st = api->Matmul(d.handle, p.desc, &alpha, B, p.a, A, p.b, &beta, C, p.c, C, p.c, &p.algo,
                                    workspace, kWorkspaceBytes, s);
  VR_CHECK(st == lt::kStatusSuccess, "cuBLASLt: cublasLtMatmul failed for m=", g.m, " n=", g.n, " k=", g.k, ": ",
           status_text(*api, st));
  return true;
}

}  // namespace

bool cublaslt_gemm(float* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s, std::string* why) {
  return run(C, lt::kR32F, A, B, g, s, why);
}
bool cublaslt_gemm(bf16* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s, std::string* why) {
  return run(C, lt::kR16BF, A, B, g, s, why);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda

#endif
