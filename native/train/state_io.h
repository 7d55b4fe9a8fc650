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

// The same over a bare ParamStore, for trainers that keep their state elsewhere and bring it into a ParamStore
// first (cuda/model/gpu_trainer: download() before saving, upload after loading). load_param_state fills the
// weights and moments only; the caller sets the step, zeroes the gradients and refreshes its compute copies.
void save_param_state(const ParamStore& ps, int64_t step, int stage, const std::string& path);
void load_param_state(ParamStore& ps, const std::vector<TensorRecord>& records, int64_t step);

}  // namespace vr
