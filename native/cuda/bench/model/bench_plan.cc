#include "cuda/bench/model/bench_plan.h"

#include <algorithm>
#include <cmath>

#include "core/json_string.h"

namespace vr::bench {
namespace {

constexpr int64_t kMiB = int64_t(1) << 20, kGiB = int64_t(1) << 30;
constexpr int64_t kContextBytes = kGiB;          // CONTEXT_BYTES
constexpr int64_t kWorkspaceBytes = 256 * kMiB;  // WORKSPACE_BYTES
constexpr double kAllocatorMargin = 0.05;        // ALLOCATOR_MARGIN
constexpr int64_t kHostBaselineBytes = 2 * kGiB;  // HOST_BASELINE_BYTES

// finish(): the allocator margin over the GPU items, the process baseline on the host, the sums.
Plan finish(std::vector<PlanItem> items) {
  Plan p;
  int64_t gpu = 0;
  for (const PlanItem& i : items) gpu += i.host ? 0 : i.bytes;
  items.push_back({"allocator margin", int64_t(std::ceil(double(gpu) * kAllocatorMargin)), false});
  items.push_back({"process baseline (Node, data loader, staging)", kHostBaselineBytes, true});
  p.items = std::move(items);
  for (const PlanItem& i : p.items) (i.host ? p.host_bytes : p.gpu_bytes) += i.bytes;
  return p;
}

int64_t llm_params(const TextConfig& t) {
  const int64_t D = t.hidden, q = int64_t(t.heads) * t.head_dim, kv = int64_t(t.kv_heads) * t.head_dim;
  const int64_t layer = 2 * D + (D * q + q) + 2 * (D * kv + kv) + q * D + 3 * D * t.intermediate;
  return int64_t(t.vocab) * D * (t.tie_embeddings ? 1 : 2) + t.layers * layer + D;
}

int64_t vision_params(const VisionConfig& v) {
  const int64_t Dv = v.hidden, I = v.intermediate, merge_in = Dv * v.merge * v.merge;
  const int64_t block = 2 * Dv + (Dv * 3 * Dv + 3 * Dv) + (Dv * Dv + Dv) + 2 * (Dv * I + I) + (I * Dv + Dv);
  const int64_t merger = Dv + (merge_in * merge_in + merge_in) + (merge_in * v.out_hidden + v.out_hidden);
  return Dv * v.patch_dim() + v.depth * block + merger;
}

double vit_bytes_per_patch(const VisionConfig& v) {
  const double Dv = v.hidden, Iv = v.intermediate, hd = Dv / v.heads, P = v.patch_dim(), u = v.merge * v.merge;
  const double regions = std::max({2 * Iv, 2 * P, 4.0 * v.out_hidden / u}) + std::max(2 * Iv, 4 * Dv) +
                         std::max(6 * Dv, 2 * Dv);
  return regions + 4 * Dv + 2 * Dv + 2 * Dv + 2 * 4 * hd + 4 + 4 / u;
}

int64_t llm_prefill_bytes_per_token(const TextConfig& t) {
  const int64_t D = t.hidden, I = t.intermediate, q = int64_t(t.heads) * t.head_dim,
                kv = int64_t(t.kv_heads) * t.head_dim;
  return 4 * D + 2 * D + 2 * (q + 2 * kv) + 2 * q + 2 * I + 2 * I + 2 * 4 * t.head_dim + 4 * t.heads;
}

}  // namespace

InferPlan plan_inference(const ModelConfig& c, int64_t image_tokens, int64_t prompt_tokens, int64_t max_new_tokens,
                         int64_t latent_steps) {
  const TextConfig& t = c.text;
  const VisionConfig& v = c.vision;
  const int64_t patches = image_tokens * v.merge * v.merge, prompt_len = image_tokens + prompt_tokens;
  const int64_t cache_len = prompt_len + max_new_tokens + latent_steps;
  Plan p;
  p.items.push_back({"LLM weights (bf16)", 2 * llm_params(t)});
  p.items.push_back({"ViT + merger weights (bf16)", 2 * vision_params(v)});
  p.items.push_back({"KV cache (bf16)", cache_len * int64_t(t.layers) * 2 * t.kv_heads * t.head_dim * 2});
  p.items.push_back({"CUDA context", kContextBytes});
  p.items.push_back({"cuBLASLt workspace + attention scratch", kWorkspaceBytes});
  if (patches > 0) {
    p.items.push_back({"ViT activations", int64_t(std::llround(double(patches) * vit_bytes_per_patch(v)))});
    p.items.push_back({"vision features", image_tokens * (4 * int64_t(v.out_hidden) + 4)});
  }
  p.items.push_back({"prompt ids + input embeddings", prompt_len * (4 * int64_t(t.hidden) + 4)});
  p.items.push_back({"LLM prefill activations (whole prompt)", prompt_len * llm_prefill_bytes_per_token(t)});
  p.items.push_back({"logits of the last position", int64_t(t.vocab) * 4});
  return finish(std::move(p.items));
}

Plan plan_training_stage1(const ModelConfig& c, int64_t T, int64_t visual_tokens, bool host, bool checkpointing,
                          int64_t chunk_values, int64_t ce_chunk) {
  const TextConfig& t = c.text;
  const VisionConfig& v = c.vision;
  const int64_t D = t.hidden, I = t.intermediate, q = int64_t(t.heads) * t.head_dim, kv = int64_t(t.kv_heads) * t.head_dim;
  // trainerParamCounts(shape, 1): LLM + BCM trained, no frozen head.
  const int64_t head = 4 * D * D + 14 * D, head_gemm = 4 * D * D;
  const int64_t llm_gemm = int64_t(t.layers) * (D * q + 2 * D * kv + q * D + 3 * D * I) + int64_t(t.vocab) * D;
  const int64_t P = llm_params(t) + head, gemm = llm_gemm + head_gemm;
  const int64_t f32_copies = P - gemm + (t.tie_embeddings ? int64_t(t.vocab) * D : 0);
  const int64_t merge_in = int64_t(v.hidden) * v.merge * v.merge;
  const int64_t vm = int64_t(v.hidden) * v.patch_dim() +
                     v.depth * (4 * int64_t(v.hidden) * v.hidden + 3 * int64_t(v.hidden) * v.intermediate) +
                     merge_in * merge_in + merge_in * v.out_hidden;
  const int64_t vv = vision_params(v) - vm;
  std::vector<PlanItem> items;
  if (host) {
    const int64_t chunk = std::min(chunk_values, P);
    auto align64 = [](int64_t b) { return (b + 63) / 64 * 64; };
    items = {{"bf16 shadows of the GEMM weights", 2 * gemm, false},
             {"fp32 copies of the non-GEMM tensors", 4 * f32_copies, false},
             {"gradients (fp32)", 4 * P, false},
             {"frozen ViT + merger (bf16 matrices, fp32 vectors)", 2 * vm + 4 * vv, false},
             {"fp32 master weights", 4 * P, true},
             {"AdamW exp_avg + exp_avg_sq (fp32)", 8 * P, true},
             {"gradient / new-weight staging (pinned, 2 slots)", 2 * (align64(4 * chunk) + align64(2 * chunk)), true}};
  } else {
    items = {{"fp32 master weights", 4 * P, false},
             {"gradients (fp32)", 4 * P, false},
             {"AdamW exp_avg + exp_avg_sq (fp32)", 8 * P, false},
             {"bf16 shadows of the GEMM weights", 2 * gemm, false},
             {"frozen ViT + merger (bf16 matrices, fp32 vectors)", 2 * vm + 4 * vv, false},
             {"fp32 weights on the host", 4 * P, true}};
  }
  // trainActivationItems, stage 1: first decoderActivationItems (decoderScratchPieces summed per group: what
  // GpuTrainLLM's arena holds; gpu_train_llm.cc reserve).
  const int64_t ce = std::min(T, ce_chunk), patches = visual_tokens * v.merge * v.merge;
  const int64_t C = std::min(T, int64_t(1024)), Nqkv = q + 2 * kv, gu = checkpointing ? C : T;
  const int64_t kept_layer = 4 * T + 4 * T + 4 * T * D + 4 * int64_t(t.heads) * T + 2 * T * D + 2 * T * D +
                             2 * T * Nqkv + 2 * T * q + 2 * gu * I + 2 * gu * I;
  items.push_back({"decoder layer inputs + final residual (fp32)", 4 * (int64_t(t.layers) + 1) * T * D, false});
  items.push_back({checkpointing ? "decoder: one layer recomputed for its backward" : "decoder: every layer's activations kept for the backward",
                   (checkpointing ? 1 : int64_t(t.layers)) * kept_layer, false});
  items.push_back({"decoder tables + forward scratch (M-RoPE, norm output, SwiGLU chunk)",
                   4 * T + 2 * 4 * T * t.head_dim + 4 * (T + 2) + 4 * T * D + 2 * C * I, false});
  items.push_back({"decoder backward transients (fp32 and bf16 gradient buffers)",
                   4 * 4 * T * D + 4 * C * I + 4 * T * q + 2 * std::max({T * D, T * q, C * I}) + 2 * 2 * C * I + 2 * T * Nqkv,
                   false});
  items.push_back({"cross-entropy logits chunk + gradient (fp32)", 2 * ce * t.vocab * 4, false});
  items.push_back({"frozen ViT forward (its buffers, no grad)", int64_t(std::llround(double(patches) * vit_bytes_per_patch(v))), false});
  items.push_back({"visual features (bf16)", visual_tokens * v.out_hidden * 2, false});
  items.push_back({"BCM keys/values (+ gradients)", 4 * visual_tokens * D * 2, false});
  items.push_back({"CUDA context", kContextBytes, false});
  items.push_back({"cuBLASLt workspace + attention scratch", kWorkspaceBytes, false});
  return finish(std::move(items));
}

std::string Plan::json() const {
  std::string items;
  for (const PlanItem& i : this->items)
    items += (items.empty() ? "" : ",") + std::string("{\"what\":") + json_string(i.what) + ",\"where\":\"" +
             (i.host ? "host" : "gpu") + "\",\"bytes\":" + std::to_string(i.bytes) + "}";
  return "{\"gpu_bytes\":" + std::to_string(gpu_bytes) + ",\"host_bytes\":" + std::to_string(host_bytes) +
         ",\"items\":[" + items + "]}";
}

}  // namespace vr::bench
