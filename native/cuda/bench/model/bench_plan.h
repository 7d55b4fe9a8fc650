// src/plan/gpu_memory.ts planInference, ported for the model bench (no Node on the GPU machines): the device
// bytes the memory plan predicts for one inference run with the whole prompt in one prefill chunk, item by item,
// so the measured peak can be held against it. Keep in step with gpu_memory.ts (CONTEXT_BYTES, WORKSPACE_BYTES,
// ALLOCATOR_MARGIN, vitBytesPerPatch, llmPrefillBytesPerToken, model_shape.ts llmParams / visionParams /
// kvBytesPerToken). The training plan (planTraining) is not ported: the bench prints its inputs instead.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace vr::bench {

struct PlanItem {
  std::string what;
  int64_t bytes = 0;
};

struct InferPlan {
  std::vector<PlanItem> items;  // the allocator margin included
  int64_t gpu_bytes = 0;
  std::string json() const;
};

// image_tokens: merged visual tokens; prompt_tokens: text tokens around the image (planInference's inputs).
InferPlan plan_inference(const ModelConfig& c, int64_t image_tokens, int64_t prompt_tokens, int64_t max_new_tokens,
                         int64_t latent_steps);

}  // namespace vr::bench
