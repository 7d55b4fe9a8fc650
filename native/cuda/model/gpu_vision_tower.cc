#include "cuda/model/gpu_vision_tower.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "core/dtype.h"
#include "core/error.h"
#include "cuda/gemm/gemm.h"
#include "cuda/model/device_arena.h"
#include "cuda/model/model_kernels.h"
#include "model/vision_tower.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

int max_segment(const std::vector<int32_t>& cu) {
  int m = 0;
  for (size_t i = 0; i + 1 < cu.size(); i++) m = std::max(m, cu[i + 1] - cu[i]);
  return m;
}

}  // namespace

GpuVisionTower::GpuVisionTower(const DeviceWeights& w, Stream s) : w_(w), vc_(w.config().vision), s_(s) {
  VR_CHECK(w.has_vision, "cuda vision tower: the vision weights were not uploaded");
}

void GpuVisionTower::forward(float* features, const float* pixel_values, const std::vector<ImageGrid>& grids) {
  const int64_t D = vc_.hidden, F = vc_.intermediate, P = vc_.patch_dim(), O = vc_.out_hidden, hd = vc_.head_dim();
  const int u = vc_.merge * vc_.merge;
  const int64_t Np = vision_patch_count(vc_, grids);
  VR_CHECK(Np > 0, "cuda vision forward: no patches");
  VR_CHECK(Np <= 0x7fffffff, "cuda vision forward: too many patches (", Np, ")");
  const int64_t Nt = Np / u;

  // Host side, shared with the CPU tower: rotary tables (processor order) and the window partition. The tables
  // are permuted here; the activations are permuted on the device by scattering row src to its slot p.
  std::vector<float> cos0, sin0;
  vision_rope_tables(vc_, grids, cos0, sin0);
  const VisionWindows win = vision_windows(vc_, grids);
  std::vector<float> cos(cos0.size()), sin(sin0.size());
  permute_to_window_order(win, u, cos0.data(), cos.data(), Np, hd);
  permute_to_window_order(win, u, sin0.data(), sin.data(), Np, hd);
  std::vector<int32_t> slot_of(static_cast<size_t>(Np));
  const std::vector<int32_t> order(win.order.begin(), win.order.end());
  for (int64_t p = 0; p < Np; p++) slot_of[size_t(win.source_patch(p, u))] = int32_t(p);
  // new[] without (): not value-initialised, as every element is written by the conversion (154 MB at an
  // HR-Bench 8K image's 65k patches; a std::vector would clear it first).
  const size_t n_px = size_t(Np * P);
  std::unique_ptr<uint16_t[]> px16(new uint16_t[n_px]);
  convert_to_bf16(px16.get(), pixel_values, DType::F32, n_px);

  // One arena per forward. Buffers whose lifetimes do not overlap share a region: the pixels and the patch
  // embeddings live only until the rows are in window order (then the MLP's gate / up take their place), the merger's
  // bf16 input reuses q|k|v and its fp32 output the gate region. Per patch (7B): 32,245 B instead of 45,861
  // (src/plan/gpu_memory.ts vitBytesPerPatch mirrors this list).
  bf16 *d_px, *h16, *qkv16, *att16, *g16, *u16, *m16;
  float *x0, *x, *y, *d_cos, *d_sin;
  int32_t *d_slot, *d_order, *d_cu_window, *d_cu_full;
  const size_t region_a = std::max({size_t(Np * F) * 2, size_t(Np * P) * 2, size_t(Nt * O) * 4});  // gate | px | y
  const size_t region_b = std::max(size_t(Np * F) * 2, size_t(Np * D) * 4);                       // up | x0
  const size_t region_q = std::max(size_t(Np * 3 * D) * 2, size_t(Nt * u * D) * 2);                // qkv | merger in
  auto carve = [&](auto& arena) {
    void* a = arena.take(region_a);
    void* b = arena.take(region_b);
    void* q = arena.take(region_q);
    g16 = static_cast<bf16*>(a);
    d_px = static_cast<bf16*>(a);
    y = static_cast<float*>(a);
    u16 = static_cast<bf16*>(b);
    x0 = static_cast<float*>(b);
    qkv16 = static_cast<bf16*>(q);
    m16 = static_cast<bf16*>(q);
    x = arena.template take<float>(Np * D);
    h16 = arena.template take<bf16>(Np * D);
    att16 = arena.template take<bf16>(Np * D);
    d_cos = arena.template take<float>(Np * hd);
    d_sin = arena.template take<float>(Np * hd);
    d_slot = arena.template take<int32_t>(Np);
    d_order = arena.template take<int32_t>(Nt);
    d_cu_window = arena.template take<int32_t>(int64_t(win.cu_window.size()));
    d_cu_full = arena.template take<int32_t>(int64_t(win.cu_full.size()));
  };
  ArenaSizer size;
  carve(size);
  DeviceArena a(size.bytes(), "vision tower activations");
  last_scratch_bytes_ = size.bytes();
  carve(a);
  copy_to_device(d_px, px16.get(), n_px * 2, "pixel values", s_);
  copy_to_device(d_cos, cos.data(), cos.size() * 4, "vision rotary cos table", s_);
  copy_to_device(d_sin, sin.data(), sin.size() * 4, "vision rotary sin table", s_);
  copy_to_device(d_slot, slot_of.data(), slot_of.size() * 4, "window order", s_);
  copy_to_device(d_order, order.data(), order.size() * 4, "window order", s_);
  copy_to_device(d_cu_window, win.cu_window.data(), win.cu_window.size() * 4, "window segments", s_);
  copy_to_device(d_cu_full, win.cu_full.data(), win.cu_full.size() * 4, "image segments", s_);

  gemm_linear_forward(x0, d_px, w_.patch_embed.w, nullptr, Np, D, P, false, s_);
  scatter_rows(x, x0, d_slot, Np, D, Np, s_);  // x[slot_of[src]] = x0[src]: window order

  AttnArgs at;
  at.Hq = at.Hkv = vc_.heads;
  at.D = int(hd);
  at.scale = 1.0f / std::sqrt(float(hd));
  at.causal = false;
  at.total_q = Np;
  at.q_stride = at.k_stride = at.v_stride = 3 * D;
  at.o_stride = D;
  for (const DeviceVisionBlock& b : w_.blocks) {
    const std::vector<int32_t>& cu = b.full ? win.cu_full : win.cu_window;
    at.nseq = int(cu.size()) - 1;
    at.cu_q = at.cu_k = b.full ? d_cu_full : d_cu_window;
    at.max_seqlen_q = at.max_seqlen_k = max_segment(cu);
    rmsnorm_to_bf16(h16, x, b.norm1, Np, D, vc_.eps, s_);
    gemm_linear_forward(qkv16, h16, b.qkv.w, b.qkv.b, Np, 3 * D, D, false, s_);
    rope_forward(qkv16, d_cos, d_sin, Np, 2 * vc_.heads, int(hd), 3 * D, s_);  // q's and k's heads: one launch
    attention_forward(att16, nullptr, qkv16, qkv16 + D, qkv16 + 2 * D, at, s_);
    gemm_linear_forward(x, att16, b.proj.w, b.proj.b, Np, D, D, /*accumulate=*/true, s_);
    rmsnorm_to_bf16(h16, x, b.norm2, Np, D, vc_.eps, s_);
    gemm_linear_forward(g16, h16, b.gate.w, b.gate.b, Np, F, D, false, s_);
    gemm_linear_forward(u16, h16, b.up.w, b.up.b, Np, F, D, false, s_);
    swiglu_forward(g16, g16, u16, Np * F, s_);
    gemm_linear_forward(x, g16, b.down.w, b.down.b, Np, D, F, /*accumulate=*/true, s_);
  }

  // Merger: the u rows of a merged token are adjacent in window order, so [Np, D] is [Nt, u*D] as it stands.
  rmsnorm_to_bf16(h16, x, w_.merger_norm, Np, D, vc_.eps, s_);
  gemm_linear_forward(m16, h16, w_.merger_fc1.w, w_.merger_fc1.b, Nt, u * D, u * D, false, s_);
  gelu_forward(m16, m16, Nt * u * D, s_);
  gemm_linear_forward(y, m16, w_.merger_fc2.w, w_.merger_fc2.b, Nt, O, u * D, false, s_);
  scatter_rows(features, y, d_order, Nt, O, Nt, s_);  // features[order[j]] = y[j]: raster order again
  device_sync("vision tower forward");  // the arena is freed on return
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
