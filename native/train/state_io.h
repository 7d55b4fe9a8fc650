// Trainer state for an exact resume: every master weight (fp32), the AdamW moments of the trainable tensors and
// the optimizer step count, in one safetensors file ("<name>", "<name>.exp_avg", "<name>.exp_avg_sq"; metadata
// format = vreflect-trainer-state, step, stage). Written to "<path>.tmp" and renamed, so a crash never leaves a
// half-written file under the final name. Loading takes the file's tensor table (parsed by TypeScript, as for
// checkpoints) and requires exactly this trainer's tensors.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/weights.h"
#include "train/trainer.h"

namespace vr {

void save_trainer_state(const Trainer& t, const std::string& path);
void load_trainer_state(Trainer& t, const std::vector<TensorRecord>& records, int64_t step);

}  // namespace vr
