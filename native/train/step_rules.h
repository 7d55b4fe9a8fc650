// Host-side rules of one training step, shared by the CPU Trainer (train/trainer.cc) and its CUDA twin
// (cuda/model/gpu_trainer.cc), so both backends validate, initialise and weigh their losses by one definition:
//   - the TrainerConfig checks;
//   - loading a BCM / DAC head from the checkpoint, or initialising it when the checkpoint has none of it;
//   - the rows of the packed batch that the step overwrites (image features, teacher-forced latent slots);
//   - stage 2's latent loss and its guards (MSE + lambda_attn x KL, nonfinite terms dropped);
//   - upstream's loss assembly (method.md §10.1): nan_to_num + clamp of each component to [0, 100], the total
//     clamped again, and which gradients pass (a saturated or nonfinite clamp stops its term's gradient).
#pragma once
#include <cstdint>
#include <vector>

#include "model/bcm.h"
#include "model/config.h"
#include "model/weights.h"
#include "train/batch.h"
#include "train/param_store.h"

namespace vr {

struct TrainerConfig;
struct StepLosses;

// vr::Error naming the first bad field (stage, latent count, lambdas, AdamW hyperparameters).
void validate_trainer_config(const TrainerConfig& tc);
// validate_batch plus the trainer's own check: the batch's latent count is the trainer's (when it has boxes).
void validate_step_batch(const TrainBatch& b, const ModelConfig& cfg, const TrainerConfig& tc);

// A head's tensors (+ the BCM's queries when given) from the checkpoint when all are there; initialised with
// `seed` when none is (an error when `required`, e.g. stage 2's BCM teacher); a partial head is an error.
void load_or_init_head(const WeightStore& ws, const ResamplerWeights& w, Param* queries, const char* what,
                       bool required, uint64_t seed);

// Positions of the <|image_pad|> tokens in order: the rows the visual features fill, feature j into row j.
std::vector<int32_t> image_pad_rows(const TrainBatch& b, int32_t image_token_id);
// Stage 1's H rows: the position before each <|lvr|> slot (the one that predicts it), box-major as lvr_slots.
std::vector<int32_t> lvr_previous_rows(const TrainBatch& b);

// torch.clamp(nan_to_num(x), 0, 100): the value, and whether gradient passes (finite and inside).
struct Clamped {
  double value = 0;
  bool pass = false;
};
Clamped clamp100(double x);

// Stage 2's latent loss (method.md §9.3) from its values, with the CPU Trainer's guards: nonfinite Zs or Z
// (inputs_finite false) -> skipped; a nonfinite KL is left out (kl_on false); a nonfinite sum -> skipped. Fills
// out.loss_mse / loss_kl (when the inputs are finite) and out.resampler_skipped. res_raw goes to assemble_losses;
// mse_on / kl_on say which gradients the backward runs (the KL's with weight w_res x lambda_attn).
struct Stage2Latent {
  double res_raw = 0;
  bool mse_on = false, kl_on = false;
};
Stage2Latent stage2_latent_loss(bool inputs_finite, double mse, double kl, double lambda_attn, StepLosses& out);

// The loss assembly of one micro-batch. Inputs: the CE sum over `ce_count` targets, whether the batch has a
// latent term (boxes) and its raw value (already 0 when a guard skipped it). Fills out.loss / loss_ce /
// loss_resampler and returns the gradient weights: w_ce for the CE sum (per target), w_res for the latent loss.
struct LossWeights {
  float w_ce = 0.f;
  float w_res = 0.f;
};
LossWeights assemble_losses(double ce_sum, int64_t ce_count, bool res_present, double res_raw,
                            double lambda_resampler, double grad_scale, StepLosses& out);

}  // namespace vr
