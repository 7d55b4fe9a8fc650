// Qwen2.5-VL as one object (weights + vision tower + language model), and a Session: one conversation's KV
// cache, prefill of an image+text prompt, and V-Reflection decoding (latent steps feed the previous post-norm
// hidden state as the next input embedding, method.md §12.3).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "model/config.h"
#include "model/language_model.h"
#include "model/rope_tables.h"
#include "model/vision_tower.h"
#include "model/weights.h"

namespace vr {

// Prefill activation buffers (ViT + LLM). Eval runs thousands of prefills on one model, each in a new Session:
// buffers kept by the model skip ~100 MB of first-touch page faults per prefill (2-3% of a 305-token prefill).
struct PrefillWorkspace {
  VisionWorkspace vit;
  LLMWorkspace llm;
};

class QwenVLModel {
 public:
  QwenVLModel(const ModelConfig& cfg, const std::vector<TensorRecord>& tensors);
  const ModelConfig& config() const { return cfg_; }
  const WeightStore& weights() const { return *ws_; }
  const VisionTower& vision() const { return *vision_; }
  const LanguageModel& llm() const { return *llm_; }
  // The shared prefill buffers, one prefill at a time: *w is null (use fresh buffers) when another prefill holds
  // them. The buffers stay with the model at the size of the largest prefill so far.
  std::unique_lock<std::mutex> borrow_workspace(PrefillWorkspace** w) const;

 private:
  mutable std::mutex work_mu_;
  mutable PrefillWorkspace work_;
  ModelConfig cfg_;
  std::unique_ptr<WeightStore> ws_;
  std::unique_ptr<VisionTower> vision_;
  std::unique_ptr<LanguageModel> llm_;
};

struct PrefillInput {
  std::vector<int32_t> ids;
  std::vector<float> pixel_values;  // [Np, patch_dim], empty for text-only prompts
  std::vector<ImageGrid> grids;
  bool all_logits = false;          // logits and hidden states for every prompt position (golden tests)
  // Tokens per decoder forward (chunked prefill: the KV cache takes the whole prompt, the activations only a
  // chunk). 0: CPU the whole prompt; CUDA the whole prompt when its activations fit the free GPU memory, else the
  // largest power of two that fits (cuda/model/gpu_session.cc). Results equal the whole prompt's up to rounding.
  int64_t prefill_chunk = 0;
};

struct PrefillOutput {
  std::vector<float> logits;        // [1 or L, vocab]
  std::vector<float> hidden;        // [1 or L, D] post-norm
  std::vector<float> vision_features;  // [Nt, D] (kept only when all_logits)
  std::vector<int64_t> positions;   // [3, L]
  int64_t rope_delta = 0;
  int64_t prefill_chunk = 0;        // tokens per decoder forward the prefill used (the prompt length: one)
  // CUDA only (0 on the CPU): device bytes of this prefill's buffers, the memory plan's activation items
  // (src/plan/gpu_memory.ts planInference; test/e2e/cuda_session_cli.test.ts checks the two agree): the ViT's
  // arena, the decoder's scratch, the prompt's ids + fp32 embeddings, the vision features until scattered.
  int64_t vit_scratch_bytes = 0, llm_scratch_bytes = 0, prompt_bytes = 0, feature_bytes = 0;
  double vision_ms = 0, llm_ms = 0;
};

struct GenerateOptions {
  int max_new_tokens = 512;
  int latent_steps = 8;              // quota per <|lvr_start|>; 0 = plain decoding
  float repetition_penalty = 1.0f;
  std::vector<int> eos_ids;
  int lvr_start_id = -1;             // -1: the model has no V-Reflection tokens (latent mode never starts)
  bool capture_attention = false;    // per latent step: attention over the image tokens (heads+layers mean)
  bool keep_step_logits = false;     // the penalised logits each token was chosen from (golden tests)
};

struct GenerateResult {
  std::vector<int32_t> ids;            // generated ids: latent-step ids and the stop token included
  std::vector<uint8_t> latent_input;   // 1 where the forward that produced ids[i] was fed a hidden state
  int latent_steps_run = 0;
  std::vector<std::vector<float>> attention;  // one map per latent step, over the image tokens
  std::vector<float> step_logits;      // [ids.size(), vocab] when keep_step_logits
  double decode_ms = 0;                // total time of the decode forwards
  int decode_forwards = 0;
  std::string stop_reason;             // "eos", "max_new_tokens"
};

class Session {
 public:
  explicit Session(std::shared_ptr<const QwenVLModel> model);
  PrefillOutput prefill(const PrefillInput& in);
  GenerateResult generate(const GenerateOptions& opt);
  int64_t cache_len() const { return cache_.len(); }
  // Prefill progress in units of ViT blocks + LLM layers (polled by JS while prefill runs).
  const Progress& progress() const { return progress_; }

 private:
  std::shared_ptr<const QwenVLModel> model_;
  KVCache cache_;
  std::vector<int32_t> seq_;     // prompt + generated ids (the repetition penalty's view)
  std::vector<float> last_logits_, last_hidden_;
  int64_t rope_delta_ = 0;
  int64_t image_begin_ = 0, image_end_ = 0;  // key range of the image tokens (attention capture)
  bool prefilled_ = false;
  Progress progress_;
};

}  // namespace vr
