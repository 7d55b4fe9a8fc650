// src/plan/gpu_memory.ts planInference, ported for the model bench (no Node on the GPU machines): the device
// bytes the memory plan predicts for one inference run with the whole prompt in one prefill chunk, item by item,
// so the measured peak can be held against it. Keep in step with gpu_memory.ts (CONTEXT_BYTES, WORKSPACE_BYTES,
// ALLOCATOR_MARGIN, vitBytesPerPatch, llmPrefillBytesPerToken, model_shape.ts llmParams / visionParams /
// kvBytesPerToken), and planTraining for stage 1 with a given placement and checkpointing (stateItems,
// trainActivationItems, decoderActivationItems, model_shape.ts llmGemmParams / headParams / visionMatrixParams; the
// BCM has 8 queries there).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace vr::bench {

struct PlanItem {
  std::string what;
  int64_t bytes = 0;
  bool host = false;  // where: host memory (else the GPU)
};

struct Plan {
  std::vector<PlanItem> items;  // the allocator margin and the host baseline included
  int64_t gpu_bytes = 0, host_bytes = 0;
  std::string json() const;
};
using InferPlan = Plan;

// image_tokens: merged visual tokens; prompt_tokens: text tokens around the image (planInference's inputs).
InferPlan plan_inference(const ModelConfig& c, int64_t image_tokens, int64_t prompt_tokens, int64_t max_new_tokens,
                         int64_t latent_steps);

// Stage 1, micro-batch of `tokens` tokens with `visual_tokens` merged visual tokens; host: --optimizer-states host;
// checkpointing: the decoder recomputes each layer (else keeps every layer's activations: GpuTrainLLM).
// chunk_values: GpuTrainParams' streamed chunk (STREAM_CHUNK_VALUES).
Plan plan_training_stage1(const ModelConfig& c, int64_t tokens, int64_t visual_tokens, bool host, bool checkpointing = true,
                          int64_t chunk_values = int64_t(1) << 25, int64_t ce_chunk = 1024);

}  // namespace vr::bench
