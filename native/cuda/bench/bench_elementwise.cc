// vreflect_cuda_bench: the memory-bound kernels' cases (bench_elementwise.h).
#include "cuda/bench/bench_elementwise.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>

#include "core/error.h"
#include "cuda/kernels/cuda_kernels.h"
#include "cuda/model/model_kernels.h"

namespace vr::bench {

namespace {

constexpr int64_t kTokens = 4096;        // a training micro-batch
constexpr int64_t kHidden = 3584;        // d_model
constexpr int64_t kFfn = 18944;          // MLP width
constexpr int64_t kVocab = 152064;       // LM head
constexpr int64_t kImageTokens = 1024;   // <|image_pad|> rows scattered into a 4096-token sequence
constexpr int64_t kMergerHidden = 5120;  // the ViT merger's GELU width (4 x 1280)
constexpr int64_t kCeRows = 1024;        // cross-entropy rows per call (1024 x 152064 bf16 = 311 MB of logits)
constexpr int kHeadsQK = kHeadsQ + kHeadsKV;  // RoPE rotates q and k: 32 heads of 128 in the fused qkv row
constexpr int64_t kQkvRow = int64_t(kHeadsQ + 2 * kHeadsKV) * kHeadDim;  // 4608
constexpr int64_t kKvRow = int64_t(kHeadsKV) * kHeadDim;                  // 512

const std::vector<std::string> kNames = {"swiglu_fwd", "swiglu_bwd", "rmsnorm_fwd", "rmsnorm_bwd", "rmsnorm_to_bf16",
                                         "rope_fwd", "rope_bwd", "convert_f32_bf16", "convert_bf16_f32",
                                         "cross_entropy", "gelu_fwd", "gelu_bwd", "scatter_rows", "kv_append",
                                         "adamw"};

Case make(const std::string& k, const std::string& impl, std::vector<std::pair<std::string, int64_t>> shape,
          double bytes) {
  Case c;
  c.kernel = k, c.impl = impl, c.shape = std::move(shape), c.bytes = bytes;
  return c;
}

}  // namespace

const std::vector<std::string>& elementwise_kernels() { return kNames; }
bool is_elementwise(const std::string& k) { return std::find(kNames.begin(), kNames.end(), k) != kNames.end(); }

void plan_elementwise(const Options& o, std::vector<Case>& out) {
  const double b2 = 2, b4 = 4;
  for (const std::string& k : kNames) {
    if (std::find(o.kernels.begin(), o.kernels.end(), k) == o.kernels.end()) continue;
    std::vector<Case> cs;  // one per shape; each planned for both impls below
    // Bytes: every tensor read or written once (weights / tables of one row or column included where they are
    // not negligible).
    if (k == "swiglu_fwd" || k == "swiglu_bwd" || k == "gelu_fwd" || k == "gelu_bwd") {
      const bool sw = k[0] == 's';
      const int64_t rows = sw ? kTokens : kImageTokens, cols = sw ? kFfn : kMergerHidden;
      const double moved = k == "swiglu_fwd" ? 3 : k == "swiglu_bwd" ? 5 : k == "gelu_fwd" ? 2 : 3;
      cs.push_back(make(k, "", {{"rows", rows}, {"cols", cols}}, moved * double(rows * cols) * b2));
    } else if (k == "rmsnorm_fwd" || k == "rmsnorm_bwd") {  // fp32, as the training decoder's residual stream
      const double moved = k == "rmsnorm_fwd" ? 2 : 4;  // bwd: dout, x, dinp read, dinp written
      cs.push_back(make(k, "", {{"rows", kTokens}, {"cols", kHidden}}, moved * double(kTokens * kHidden) * b4));
      cs.back().dtype = "f32";
    } else if (k == "rmsnorm_to_bf16") {
      for (int64_t n : {kTokens, int64_t(1)})
        cs.push_back(make(k, "", {{"rows", n}, {"cols", kHidden}}, double(n * kHidden) * (b4 + b2)));
    } else if (k == "rope_fwd" || k == "rope_bwd") {
      for (int64_t t : {kTokens, int64_t(1)})
        cs.push_back(make(k, "", {{"tokens", t}, {"heads", kHeadsQK}, {"head_dim", kHeadDim}, {"row_stride", kQkvRow}},
                          double(t * kHeadsQK * kHeadDim) * 2 * b2 + double(t * kHeadDim) * 2 * b4));
    } else if (k == "convert_f32_bf16" || k == "convert_bf16_f32") {
      // f32 -> bf16: the training backward's dF [T, F] (the largest) and the normed rows [T, D]
      if (k == "convert_f32_bf16")
        cs.push_back(make(k, "", {{"rows", kTokens}, {"cols", kFfn}}, double(kTokens * kFfn) * (b4 + b2)));
      cs.push_back(make(k, "", {{"rows", kTokens}, {"cols", kHidden}}, double(kTokens * kHidden) * (b4 + b2)));
    } else if (k == "cross_entropy") {  // in place: logits read twice, dlogits written
      cs.push_back(make(k, "", {{"rows", kCeRows}, {"vocab", kVocab}}, 3.0 * double(kCeRows * kVocab) * b2));
    } else if (k == "scatter_rows") {
      cs.push_back(make(k, "", {{"rows", kImageTokens}, {"tokens", kTokens}, {"cols", kHidden}},
                        2.0 * double(kImageTokens * kHidden) * b2));
    } else if (k == "kv_append") {
      for (int64_t t : {kTokens, int64_t(1)})
        cs.push_back(make(k, "", {{"tokens", t}, {"row", kKvRow}, {"src_stride", kQkvRow}}, 2.0 * 2 * double(t * kKvRow) * b2));
    } else if (k == "adamw") {  // fp32 param / m / v read and written, bf16 grad read, bf16 param copy written
      const int64_t n = kHidden * kFfn;
      cs.push_back(make(k, "", {{"params", n}}, double(n) * (6 * b4 + 2 * b2)));
      cs.back().dtype = "f32";  // fp32 master weights and moments, bf16 gradient and copy
    }
    if (o.quick) cs.resize(1);  // the training shape only
    for (const Case& c : cs)
      for (const char* impl : {"vreflect-vec16", "vreflect-scalar"}) {
        Case x = c;
        x.impl = impl;
        out.push_back(x);
      }
  }
}

std::function<void()> elementwise_run(const Case& c, const std::function<void*(int, size_t)>& buf) {
  using cuda::bf16;
  const std::string& k = c.kernel;
  auto bf = [&](int i, int64_t n) { return static_cast<bf16*>(buf(i, size_t(n) * 2)); };
  auto f32 = [&](int i, int64_t n) { return static_cast<float*>(buf(i, size_t(n) * 4)); };
  auto upload = [](void* d, const void* h, size_t bytes) {
    if (cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice) != cudaSuccess) fail("cudaMemcpy failed");
  };
  if (k == "swiglu_fwd" || k == "swiglu_bwd" || k == "gelu_fwd" || k == "gelu_bwd") {
    const int64_t n = c.get("rows") * c.get("cols");
    bf16 *a = bf(0, n), *b = bf(1, n), *d = bf(2, n), *o1 = bf(3, n), *o2 = bf(4, n);
    if (k == "swiglu_fwd") return [=] { cuda::swiglu_forward(o1, a, b, n); };
    if (k == "swiglu_bwd") return [=] { cuda::swiglu_backward(o1, o2, d, a, b, n); };
    if (k == "gelu_fwd") return [=] { cuda::gelu_forward(o1, a, n); };
    return [=] { cuda::gelu_backward(o1, d, a, n); };
  }
  if (k == "rmsnorm_fwd" || k == "rmsnorm_bwd" || k == "rmsnorm_to_bf16") {
    const int64_t N = c.get("rows"), C = c.get("cols");
    float* rstd = f32(5, N);
    if (k == "rmsnorm_to_bf16") {
      float *x = f32(0, N * C), *w = f32(1, C);
      bf16* y = bf(2, N * C);
      return [=] { cuda::rmsnorm_to_bf16(y, x, w, N, C, 1e-6f); };
    }
    float *x = f32(0, N * C), *w = f32(1, C), *y = f32(2, N * C), *dy = f32(3, N * C);
    if (k == "rmsnorm_fwd") return [=] { cuda::rmsnorm_forward(y, rstd, x, w, N, C, 1e-6f); };
    cuda::rmsnorm_forward(y, rstd, x, w, N, C, 1e-6f);  // a real rstd
    float* dw = f32(6, C);
    return [=] { cuda::rmsnorm_backward(y, dw, dy, x, w, rstd, N, C); };
  }
  if (k == "rope_fwd" || k == "rope_bwd") {
    const int64_t T = c.get("tokens"), stride = c.get("row_stride");
    const int H = int(c.get("heads")), D = int(c.get("head_dim"));
    bf16* x = bf(0, T * stride);
    float *cs = f32(1, T * D), *sn = f32(2, T * D);
    if (k == "rope_fwd") return [=] { cuda::rope_forward(x, cs, sn, T, H, D, stride); };
    return [=] { cuda::rope_backward(x, cs, sn, T, H, D, stride); };
  }
  if (k == "convert_f32_bf16" || k == "convert_bf16_f32") {
    const int64_t n = c.get("rows") * c.get("cols");
    float* f = f32(0, n);
    bf16* b = bf(1, n);
    if (k == "convert_f32_bf16") return [=] { cuda::convert(b, f, n); };
    return [=] { cuda::convert(f, b, n); };
  }
  if (k == "cross_entropy") {
    const int64_t N = c.get("rows"), V = c.get("vocab");
    bf16* logits = bf(0, N * V);
    float* losses = f32(1, N);
    auto* tgt = static_cast<int32_t*>(buf(2, size_t(N) * 4));
    std::vector<int32_t> t(static_cast<size_t>(N));
    for (int64_t i = 0; i < N; i++) t[size_t(i)] = int32_t(i * 7919 % V);
    upload(tgt, t.data(), t.size() * 4);
    // In place, as the training step runs it; the logits stay finite (dlogits are small).
    return [=] { cuda::cross_entropy_forward_backward(losses, logits, logits, tgt, N, V, 1.0f / float(N)); };
  }
  if (k == "scatter_rows") {
    const int64_t n = c.get("rows"), T = c.get("tokens"), D = c.get("cols");
    bf16 *x = bf(0, T * D), *src = bf(1, n * D);
    auto* rows = static_cast<int32_t*>(buf(2, size_t(n) * 4));
    std::vector<int32_t> r(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; i++) r[size_t(i)] = int32_t(16 + i);
    upload(rows, r.data(), r.size() * 4);
    return [=] { cuda::scatter_rows(x, src, rows, n, D, T); };
  }
  if (k == "kv_append") {
    const int64_t T = c.get("tokens"), row = c.get("row"), stride = c.get("src_stride");
    const int64_t cap = std::max<int64_t>(T, 4096);
    bf16 *kc = bf(0, cap * row), *vc = bf(1, cap * row), *src = bf(2, T * stride);
    const int64_t pos = cap - T;
    return [=] { cuda::kv_append(kc, vc, src + kHeadsQ * kHeadDim, src + (kHeadsQ + kHeadsKV) * kHeadDim, pos, T, row, stride, stride, cap); };
  }
  if (k == "adamw") {
    const int64_t n = c.get("params");
    float *p = f32(0, n), *m = f32(1, n), *v = f32(2, n);
    if (cudaMemset(v, 0, size_t(n) * 4) != cudaSuccess) fail("cudaMemset failed");  // v >= 0
    bf16 *g = bf(3, n), *pb = bf(4, n);
    cuda::AdamWConfig cfg;
    cfg.lr = 1e-5f;
    cfg.step = 10;
    return [=] { cuda::adamw_step(p, m, v, g, n, cfg, pb); };
  }
  fail("unknown elementwise bench kernel ", k);
}

}  // namespace vr::bench
