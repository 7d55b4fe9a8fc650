// One micro-batch as the Trainer receives it: the layout of src/data/batch.ts (TrainBatch), field for field.
// n samples back to back (T tokens), I images, V visual tokens, B boxes, K = latent slots per box.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/rope_tables.h"

namespace vr {

struct TrainBatch {
  std::vector<int32_t> input_ids;       // [T]
  std::vector<int32_t> cu_seqlens;      // [n+1]
  std::vector<int32_t> positions;       // [3*T] M-RoPE planes t, h, w (restarting in each sample)
  std::vector<int32_t> targets;         // [T] shifted labels: -100 or the id predicted at position i
  int64_t num_targets = 0;
  std::vector<float> pixel_values;      // [P * patch_dim]
  int64_t patch_dim = 0;
  std::vector<ImageGrid> grids;         // [I]
  std::vector<int32_t> cu_image_tokens; // [I+1] rows of V per image
  std::vector<int32_t> cu_sample_visual;// [n+1] rows of V per sample (DAC keys)
  int latent_count = 0;                 // K
  std::vector<int32_t> box_token_idx;   // [sum N_b] global rows of V (BCM keys)
  std::vector<int32_t> box_local_idx;   // [sum N_b] the same, local to the sample's first image (KL scatter)
  std::vector<int32_t> cu_box_tokens;   // [B+1]
  std::vector<int32_t> box_sample;      // [B]
  std::vector<int32_t> lvr_slots;       // [K*B] token positions of the <|lvr|> slots, box-major

  int64_t tokens() const { return int64_t(input_ids.size()); }
  int samples() const { return int(cu_seqlens.size()) - 1; }
  int64_t boxes() const { return int64_t(box_sample.size()); }
  int64_t visual_tokens() const { return cu_image_tokens.empty() ? 0 : cu_image_tokens.back(); }
};

// Checks every index and count against the model (vocab, image token id, patch size) and the batch's own
// tables; throws vr::Error naming the first inconsistency. lvr_id < 0 skips the slot-id check.
void validate_batch(const TrainBatch& b, const ModelConfig& cfg, int lvr_id);

}  // namespace vr
