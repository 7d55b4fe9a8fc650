#include "cuda/model/device_weights.h"

#include <algorithm>
#include <functional>
#include <string>

#include "core/dtype.h"
#include "core/error.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

// One device tensor to fill: the concatenation (along rows) of one or more checkpoint tensors, in bf16 or fp32.
// `alt` is a second accepted on-disk shape with the same elements (the patch embedding's Conv3d kernel
// [D, C, T, p, p], which the GEMM reads as [D, C*T*p*p], as the CPU model's WeightStore::linear does).
struct Piece {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<int64_t> alt = {};
};

const TensorView& view(const WeightStore& ws, const Piece& p) {
  if (p.alt.empty()) return ws.get(p.name, p.shape);
  try {
    return ws.get(p.name, p.alt);
  } catch (const Error&) {
    return ws.get(p.name, p.shape);  // its message names the 2-D shape
  }
}
struct Upload {
  std::vector<Piece> parts;
  bool bf16 = true;
  std::function<void(void*)> bind;  // receives the device address once the arena exists
  int64_t numel() const {
    int64_t n = 0;
    for (const Piece& p : parts) {
      int64_t k = 1;
      for (int64_t d : p.shape) k *= d;
      n += k;
    }
    return n;
  }
  size_t bytes() const { return size_t(numel()) * (bf16 ? 2 : 4); }
};

// Converts the parts on the host into one staging buffer and copies it up (one cudaMemcpy per device tensor).
void fill(const Upload& u, void* dst, const WeightStore& ws, std::vector<uint8_t>& staging) {
  staging.resize(u.bytes());
  size_t off = 0;
  for (const Piece& p : u.parts) {
    const TensorView& v = view(ws, p);
    const size_t n = size_t(v.numel());
    VR_CHECK(v.dtype == DType::F32 || v.dtype == DType::BF16 || v.dtype == DType::F16, "cuda weights: tensor ",
             p.name, " has dtype ", dtype_name(v.dtype), ", not a floating type");
    if (u.bf16) {
      convert_to_bf16(reinterpret_cast<uint16_t*>(staging.data() + off), v.data, v.dtype, n);
      off += n * 2;
    } else {
      convert_to_f32(reinterpret_cast<float*>(staging.data() + off), v.data, v.dtype, n);
      off += n * 4;
    }
  }
  copy_to_device(dst, staging.data(), staging.size(), u.parts[0].name.c_str());
}

}  // namespace

DeviceWeights::DeviceWeights(const ModelConfig& mc, const WeightStore& ws, WeightParts parts) : mc_(mc) {
  const TextConfig& tc = mc.text;
  const VisionConfig& vc = mc.vision;
  std::vector<Upload> plan;
  auto vec = [&](const std::string& name, int64_t n, const float** slot) {
    plan.push_back({{{name, {n}}}, false, [slot](void* p) { *slot = static_cast<const float*>(p); }});
  };
  // A Linear [N, K] from one or more weights stacked along N (and their biases, when named).
  auto linear = [&](DeviceLinear* L, const std::vector<std::string>& weights, const std::vector<int64_t>& rows,
                    const std::vector<std::string>& biases, int64_t K) {
    L->K = K;
    L->N = 0;
    Upload w{{}, true, [L](void* p) { L->w = static_cast<const bf16*>(p); }};
    for (size_t i = 0; i < weights.size(); i++) {
      w.parts.push_back({weights[i], {rows[i], K}});
      L->N += rows[i];
    }
    plan.push_back(w);
    if (biases.empty()) return;
    Upload b{{}, false, [L](void* p) { L->b = static_cast<const float*>(p); }};
    for (size_t i = 0; i < biases.size(); i++) b.parts.push_back({biases[i], {rows[i]}});
    plan.push_back(b);
  };

  const int64_t D = tc.hidden, F = tc.intermediate, hd = tc.head_dim;
  const int64_t Dq = int64_t(tc.heads) * hd, Dkv = int64_t(tc.kv_heads) * hd;
  has_language = parts != WeightParts::VisionOnly;
  if (has_language) {
    plan.push_back({{{"model.embed_tokens.weight", {tc.vocab, D}}}, true,
                    [this](void* p) { embed = static_cast<const bf16*>(p); }});
    layers.resize(size_t(tc.layers));
    for (int i = 0; i < tc.layers; i++) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      DeviceDecoderLayer& l = layers[size_t(i)];
      vec(p + "input_layernorm.weight", D, &l.in_norm);
      vec(p + "post_attention_layernorm.weight", D, &l.post_norm);
      const std::string a = p + "self_attn.";
      linear(&l.qkv, {a + "q_proj.weight", a + "k_proj.weight", a + "v_proj.weight"}, {Dq, Dkv, Dkv},
             {a + "q_proj.bias", a + "k_proj.bias", a + "v_proj.bias"}, D);
      linear(&l.o, {a + "o_proj.weight"}, {D}, {}, Dq);
      linear(&l.gate, {p + "mlp.gate_proj.weight"}, {F}, {}, D);
      linear(&l.up, {p + "mlp.up_proj.weight"}, {F}, {}, D);
      linear(&l.down, {p + "mlp.down_proj.weight"}, {D}, {}, F);
    }
    vec("model.norm.weight", D, &final_norm);
    if (!tc.tie_embeddings) linear(&lm_head, {"lm_head.weight"}, {tc.vocab}, {}, D);
  }

  has_vision = parts != WeightParts::LanguageOnly && vc.depth > 0;
  if (has_vision) {
    const int64_t Dv = vc.hidden, Fv = vc.intermediate;
    linear(&patch_embed, {"visual.patch_embed.proj.weight"}, {Dv}, {}, vc.patch_dim());
    plan.back().parts[0].alt = {Dv, vc.in_channels, vc.temporal_patch, vc.patch, vc.patch};
    blocks.resize(size_t(vc.depth));
    for (int i = 0; i < vc.depth; i++) {
      const std::string p = "visual.blocks." + std::to_string(i) + ".";
      DeviceVisionBlock& b = blocks[size_t(i)];
      vec(p + "norm1.weight", Dv, &b.norm1);
      vec(p + "norm2.weight", Dv, &b.norm2);
      linear(&b.qkv, {p + "attn.qkv.weight"}, {3 * Dv}, {p + "attn.qkv.bias"}, Dv);
      linear(&b.proj, {p + "attn.proj.weight"}, {Dv}, {p + "attn.proj.bias"}, Dv);
      linear(&b.gate, {p + "mlp.gate_proj.weight"}, {Fv}, {p + "mlp.gate_proj.bias"}, Dv);
      linear(&b.up, {p + "mlp.up_proj.weight"}, {Fv}, {p + "mlp.up_proj.bias"}, Dv);
      linear(&b.down, {p + "mlp.down_proj.weight"}, {Dv}, {p + "mlp.down_proj.bias"}, Fv);
      b.full = std::find(vc.fullatt_blocks.begin(), vc.fullatt_blocks.end(), i) != vc.fullatt_blocks.end();
    }
    vec("visual.merger.ln_q.weight", Dv, &merger_norm);
    linear(&merger_fc1, {"visual.merger.mlp.0.weight"}, {4 * Dv}, {"visual.merger.mlp.0.bias"}, 4 * Dv);
    linear(&merger_fc2, {"visual.merger.mlp.2.weight"}, {vc.out_hidden}, {"visual.merger.mlp.2.bias"}, 4 * Dv);
  }

  // Check every tensor's presence and shape before the device allocation, so a bad checkpoint costs no upload.
  size_t total = 0;
  for (const Upload& u : plan) {
    for (const Piece& p : u.parts) view(ws, p);
    total += DeviceArena::round_up(u.bytes());
  }
  arena_ = DeviceArena(total, "model weights");
  std::vector<uint8_t> staging;
  for (const Upload& u : plan) {
    void* dst = arena_.take(u.bytes());
    fill(u, dst, ws, staging);
    u.bind(dst);
  }
  if (has_language && tc.tie_embeddings) lm_head = DeviceLinear{embed, nullptr, tc.vocab, D};
  device_sync("weight upload");
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
