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
  InferPlan p;
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
  int64_t raw = 0;
  for (const PlanItem& i : p.items) raw += i.bytes;
  p.items.push_back({"allocator margin", int64_t(std::ceil(double(raw) * kAllocatorMargin))});
  p.gpu_bytes = raw + p.items.back().bytes;
  return p;
}

std::string InferPlan::json() const {
  std::string items;
  for (const PlanItem& i : this->items)
    items += (items.empty() ? "" : ",") + std::string("{\"what\":") + json_string(i.what) +
             ",\"bytes\":" + std::to_string(i.bytes) + "}";
  return "{\"gpu_bytes\":" + std::to_string(gpu_bytes) + ",\"items\":[" + items + "]}";
}

}  // namespace vr::bench
