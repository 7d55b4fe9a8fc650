#include "model/vision_tower.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/grow.h"
#include "cpu/op_profile.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "model/swiglu_mlp.h"

namespace vr {

VisionWindows vision_windows(const VisionConfig& vc, const std::vector<ImageGrid>& grids) {
  VisionWindows w;
  const int ws = vc.window_size / vc.merge / vc.patch;  // window side in merged tokens
  const int u = vc.merge * vc.merge;
  int64_t offset = 0;
  w.cu_window.push_back(0);
  w.cu_full.push_back(0);
  for (const ImageGrid& g : grids) {
    const int H = g.h / vc.merge, W = g.w / vc.merge;
    for (int t = 0; t < g.t; t++) {  // a video frame group is its own full-attention segment
      for (int wy = 0; wy < (H + ws - 1) / ws; wy++)
        for (int wx = 0; wx < (W + ws - 1) / ws; wx++) {
          int n = 0;
          for (int y = wy * ws; y < std::min((wy + 1) * ws, H); y++)
            for (int x = wx * ws; x < std::min((wx + 1) * ws, W); x++, n++) w.order.push_back(offset + y * W + x);
          w.cu_window.push_back(w.cu_window.back() + n * u);
        }
      offset += int64_t(H) * W;
      w.cu_full.push_back(w.cu_full.back() + H * W * u);
    }
  }
  return w;
}

void permute_to_window_order(const VisionWindows& win, int u, const float* src, float* dst, int64_t Np,
                             int64_t cols) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < Np; p++)
    std::memcpy(&dst[p * cols], &src[win.source_patch(p, u) * cols], size_t(cols) * sizeof(float));
}

int64_t vision_patch_count(const VisionConfig& vc, const std::vector<ImageGrid>& grids) {
  int64_t Np = 0;
  for (const ImageGrid& g : grids) {
    VR_CHECK(g.t >= 1 && g.h > 0 && g.w > 0 && g.h % vc.merge == 0 && g.w % vc.merge == 0,
             "image grid (", g.t, ", ", g.h, ", ", g.w, ") is not a positive multiple of the merge size");
    Np += g.patches();
  }
  return Np;
}

VisionTower::VisionTower(const VisionConfig& vc, WeightStore& ws, DType compute) : vc_(vc) {
  const int64_t D = vc.hidden, F = vc.intermediate, P = vc.patch_dim();
  patch_embed_ = ws.linear("visual.patch_embed.proj.weight", "", D, P, compute);
  for (int i = 0; i < vc.depth; i++) {
    const std::string p = "visual.blocks." + std::to_string(i) + ".";
    Block b;
    b.norm1 = ws.vec_f32(p + "norm1.weight", D);
    b.norm2 = ws.vec_f32(p + "norm2.weight", D);
    b.qkv = ws.linear(p + "attn.qkv.weight", p + "attn.qkv.bias", 3 * D, D, compute);
    b.proj = ws.linear(p + "attn.proj.weight", p + "attn.proj.bias", D, D, compute);
    b.gate = ws.linear(p + "mlp.gate_proj.weight", p + "mlp.gate_proj.bias", F, D, compute);
    b.up = ws.linear(p + "mlp.up_proj.weight", p + "mlp.up_proj.bias", F, D, compute);
    b.down = ws.linear(p + "mlp.down_proj.weight", p + "mlp.down_proj.bias", D, F, compute);
    b.full = std::find(vc.fullatt_blocks.begin(), vc.fullatt_blocks.end(), i) != vc.fullatt_blocks.end();
    blocks_.push_back(b);
  }
  merger_norm_ = ws.vec_f32("visual.merger.ln_q.weight", D);
  merger_fc1_ = ws.linear("visual.merger.mlp.0.weight", "visual.merger.mlp.0.bias", 4 * D, 4 * D, compute);
  merger_fc2_ = ws.linear("visual.merger.mlp.2.weight", "visual.merger.mlp.2.bias", vc.out_hidden, 4 * D, compute);
}

void VisionTower::forward(const float* pixel_values, const std::vector<ImageGrid>& grids,
                          std::vector<float>& features, Progress* progress, VisionWorkspace* work) const {
  VisionWorkspace local;
  VisionWorkspace& w = work ? *work : local;
  const int64_t D = vc_.hidden, hd = vc_.head_dim();
  const int u = vc_.merge * vc_.merge;
  const int64_t Np = vision_patch_count(vc_, grids);
  VR_CHECK(Np > 0, "vision forward: no patches");

  // Patch embedding in processor order, then permute rows (and RoPE tables) into window order.
  float* x0 = grow(w.x0, Np * D);
  linear_forward(x0, pixel_values, patch_embed_, Np);
  VisionWindows win;
  {
    prof::Scope sc("vit rope tables + window order");
    vision_rope_tables(vc_, grids, w.cos0, w.sin0);
    win = vision_windows(vc_, grids);
  }
  // x, qkv and h16 get the padded row count of the bf16 GEMMs (linear_padded_rows), so those GEMMs run in place;
  // the extra rows of h16 are zeros, those of x and qkv collect junk (biases) nobody reads.
  const int64_t Npp = linear_padded_rows(Np);
  float* x = grow(w.x, Npp * D);
  float* cos = grow(w.cos, Np * hd);
  float* sin = grow(w.sin, Np * hd);
  {
    prof::Scope sc("vit permute to window order");
    permute_to_window_order(win, u, x0, x, Np, D);
    permute_to_window_order(win, u, w.cos0.data(), cos, Np, hd);
    permute_to_window_order(win, u, w.sin0.data(), sin, Np, hd);
  }

  float* qkv = grow(w.qkv, Npp * 3 * D);
  float* att = grow(w.att, Np * D);
  const bool bf16 = !blocks_.empty() && blocks_[0].qkv.dtype == DType::BF16;
  float* h = bf16 ? nullptr : grow(w.h, Np * D);  // fp32 norm output (bf16 weights: only h16)
  uint16_t* h16 = bf16 ? grow(w.h16, Npp * D) : nullptr;
  if (h16) std::memset(h16 + Np * D, 0, size_t((Npp - Np) * D) * sizeof(uint16_t));
  for (const Block& b : blocks_) {
    if (bf16) {  // the norm writes the GEMM's bf16 input straight
      {
        prof::Scope sc("vit rmsnorm (-> bf16)");
        rmsnorm_forward_bf16(h16, x, b.norm1, Np, D, vc_.eps);
      }
      linear_forward_bf16in(qkv, h16, b.qkv, Np, false, /*padded=*/true);
    } else {
      {
        prof::Scope sc("vit rmsnorm");
        rmsnorm_forward(h, nullptr, x, b.norm1, Np, D, vc_.eps);
      }
      linear_forward(qkv, h, b.qkv, Np);
    }
    {
      prof::Scope sc("vit rope");
      // q and k are adjacent in each fused row and share the token's angles: one pass over 2 x heads
      rope_forward(qkv, cos, sin, Np, 2 * vc_.heads, int(hd), 3 * D);
    }
    const std::vector<int32_t>& cu = b.full ? win.cu_full : win.cu_window;
    AttnParams ap;
    ap.Hq = ap.Hkv = vc_.heads;
    ap.D = int(hd);
    ap.scale = 1.0f / std::sqrt(float(hd));
    ap.causal = false;
    ap.bf16 = bf16;  // bf16 weights: bf16 attention tiles too (fp32 keeps fp32 attention)
    ap.nseq = int(cu.size()) - 1;
    ap.cu_q = ap.cu_k = cu.data();
    ap.q_stride = ap.k_stride = ap.v_stride = 3 * D;
    ap.o_stride = D;
    {
      double fl = 0;
      for (size_t s = 0; s + 1 < cu.size(); s++) fl += 4.0 * double(cu[s + 1] - cu[s]) * (cu[s + 1] - cu[s]) * D;
      prof::Scope sc(b.full ? "vit attention full" : "vit attention window", fl);
      attention_forward(att, nullptr, qkv, qkv + D, qkv + 2 * D, ap);
    }
    linear_forward(x, att, b.proj, Np, /*accumulate=*/true, /*padded=*/true);
    if (bf16) {
      prof::Scope sc("vit rmsnorm (-> bf16)");
      rmsnorm_forward_bf16(h16, x, b.norm2, Np, D, vc_.eps);
    } else {
      prof::Scope sc("vit rmsnorm");
      rmsnorm_forward(h, nullptr, x, b.norm2, Np, D, vc_.eps);
    }
    swiglu_mlp_forward(x, h, Np, D, b.gate, b.up, b.down, w.mlp, 2048, h16, /*rows_padded=*/true);
    if (progress) progress->step();
  }

  // Merger: RMSNorm per patch, concatenate each 2x2 block (rows are adjacent), MLP, then undo window order.
  const int64_t Nt = Np / u;
  float* m1 = grow(w.m1, Nt * u * D);
  float* y = grow(w.y, Nt * vc_.out_hidden);
  if (bf16) {  // h16 [Np, D] read as [Nt, 4D]
    {
      prof::Scope sc("vit rmsnorm (-> bf16)");
      rmsnorm_forward_bf16(h16, x, merger_norm_, Np, D, vc_.eps);
    }
    linear_forward_bf16in(m1, h16, merger_fc1_, Nt);
  } else {
    {
      prof::Scope sc("vit rmsnorm");
      rmsnorm_forward(h, nullptr, x, merger_norm_, Np, D, vc_.eps);
    }
    linear_forward(m1, h, merger_fc1_, Nt);
  }
  if (bf16) {  // the GELU rounds to bf16 in its own pass for fc2 (vectorised erf)
    uint16_t* m1_16 = grow(w.m1_16, Nt * u * D);
    {
      prof::Scope sc("vit merger gelu (-> bf16)");
      gelu_erf_forward_bf16(m1_16, m1, Nt * u * D);
    }
    linear_forward_bf16in(y, m1_16, merger_fc2_, Nt);
  } else {
    {
      prof::Scope sc("vit merger gelu");
      gelu_erf_forward(m1, m1, Nt * u * D);
    }
    linear_forward(y, m1, merger_fc2_, Nt);
  }
  const int64_t O = vc_.out_hidden;
  prof::Scope unperm_scope("vit undo window order");
  features.resize(size_t(Nt * O));  // every row is written below (order is a permutation)
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < Nt; j++) std::memcpy(&features[win.order[j] * O], &y[j * O], O * sizeof(float));
}

}  // namespace vr
