// Trainer state for an exact resume: every master weight (fp32), the AdamW moments of the trainable tensors and
// the optimizer step count, in one safetensors file ("<name>", "<name>.exp_avg", "<name>.exp_avg_sq"; metadata
// format = vreflect-trainer-state, step, stage). Written to "<path>.tmp" and renamed, so a crash never leaves a
// half-written file under the final name. Loading takes the file's tensor table (parsed by TypeScript, as for
// checkpoints) and requires exactly this trainer's tensors.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/weights.h"
#include "train/trainer.h"

namespace vr {

void save_trainer_state(const Trainer& t, const std::string& path);
void load_trainer_state(Trainer& t, const std::vector<TensorRecord>& records, int64_t step);

// Which of a tensor's arrays a state entry holds.
enum class StateField { Weights, ExpAvg, ExpAvgSq };
// Reads `count` values of a field from element `offset` on (the writer asks in pieces of at most 16 Mi values, so
// a trainer that streams its state from elsewhere needs no tensor-sized buffer).
using StateSource = std::function<void(const Param&, StateField, int64_t offset, int64_t count, float* dst)>;
// Receives a whole field (src: the file's mapped values).
using StateSink = std::function<void(const Param&, StateField, const float* src)>;
// The default source / sink: the Param's own host arrays (a one-line error naming the tensor where the store was
// allocated without that array).
StateSource host_state_source();
StateSink host_state_sink();

// The same over a bare ParamStore (names, shapes, flags), for trainers that keep their state elsewhere
// (cuda/model/gpu_trainer streams it from / to the device). load_param_state fills the weights and moments only;
// the caller sets the step, zeroes the gradients and refreshes its compute copies.
void save_param_state(const ParamStore& ps, int64_t step, int stage, const std::string& path,
                      const StateSource& read = host_state_source());
void load_param_state(const ParamStore& ps, const std::vector<TensorRecord>& records, int64_t step,
                      const StateSink& write = host_state_sink());

}  // namespace vr
