#include "train/step_rules.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "train/head_init.h"
#include "train/trainer.h"

namespace vr {

void validate_trainer_config(const TrainerConfig& tc) {
  VR_CHECK(tc.stage == 1 || tc.stage == 2, "trainer: stage must be 1 or 2, got ", tc.stage);
  VR_CHECK(tc.latent_count > 0 && tc.latent_count <= 1024, "trainer: latent count must be in [1, 1024]");
  VR_CHECK(std::isfinite(tc.lambda_resampler) && tc.lambda_resampler >= 0, "trainer: lambda must be >= 0");
  VR_CHECK(std::isfinite(tc.lambda_attn) && tc.lambda_attn >= 0, "trainer: lambda_attn must be >= 0");
  const AdamWConfig& a = tc.adamw;
  VR_CHECK(a.beta1 >= 0 && a.beta1 < 1 && a.beta2 >= 0 && a.beta2 < 1, "trainer: AdamW betas must be in [0, 1)");
  VR_CHECK(a.eps > 0 && a.weight_decay >= 0, "trainer: AdamW eps must be > 0 and weight decay >= 0");
}

void validate_step_batch(const TrainBatch& b, const ModelConfig& cfg, const TrainerConfig& tc) {
  VR_CHECK(b.latent_count == tc.latent_count || b.boxes() == 0, "batch: latentCount ", b.latent_count,
           " differs from the trainer's ", tc.latent_count);
  validate_batch(b, cfg, tc.lvr_id);
}

void load_or_init_head(const WeightStore& ws, const ResamplerWeights& w, Param* queries, const char* what,
                       bool required, uint64_t seed) {
  std::vector<Param*> ts = {w.in_w, w.in_b, w.out_w, w.out_b, w.ln_w, w.ln_b};
  if (queries) ts.push_back(queries);
  size_t present = 0;
  for (Param* p : ts) present += ws.has(p->name);
  if (present == ts.size()) {
    for (Param* p : ts) {
      const TensorView& t = ws.get(p->name, p->shape);
      convert_to_f32(p->w, t.data, t.dtype, size_t(p->numel));
    }
    return;
  }
  VR_CHECK(present == 0, "checkpoint has ", present, " of the ", ts.size(), " ", what, ".* tensors (",
           "a partial module cannot be loaded)");
  VR_CHECK(!required, "stage 2 needs a stage-1 checkpoint: no ", what, ".* tensors in the model");
  InitRng rng(seed);
  if (queries) init_queries(*queries, rng);
  init_resampler(w, rng);
}

std::vector<int32_t> image_pad_rows(const TrainBatch& b, int32_t image_token_id) {
  std::vector<int32_t> rows;
  rows.reserve(size_t(b.visual_tokens()));
  for (int64_t i = 0; i < b.tokens(); i++)
    if (b.input_ids[size_t(i)] == image_token_id) rows.push_back(int32_t(i));
  return rows;
}

std::vector<int32_t> lvr_previous_rows(const TrainBatch& b) {
  std::vector<int32_t> rows(b.lvr_slots.size());
  for (size_t r = 0; r < rows.size(); r++) rows[r] = b.lvr_slots[r] - 1;  // validate_batch: slots are >= 1
  return rows;
}

Clamped clamp100(double x) {
  if (!std::isfinite(x)) return {0.0, false};
  return {std::min(100.0, std::max(0.0, x)), x >= 0 && x <= 100};
}

Stage2Latent stage2_latent_loss(bool inputs_finite, double mse, double kl, double lambda_attn, StepLosses& out) {
  Stage2Latent r;
  if (!inputs_finite) {
    out.resampler_skipped = true;
    return r;
  }
  out.loss_mse = mse;
  out.loss_kl = kl;
  r.mse_on = true;
  r.kl_on = std::isfinite(kl);
  r.res_raw = mse + (r.kl_on ? lambda_attn * kl : 0.0);
  if (!std::isfinite(r.res_raw)) {
    r = Stage2Latent();
    out.resampler_skipped = true;
  }
  return r;
}

LossWeights assemble_losses(double ce_sum, int64_t ce_count, bool res_present, double res_raw,
                            double lambda_resampler, double grad_scale, StepLosses& out) {
  // torch's mean over zero targets is NaN, which upstream's nan_to_num turns into 0.
  const double ce_raw = ce_count ? ce_sum / double(ce_count) : NAN;
  const Clamped ce_c = clamp100(ce_raw), res_c = res_present ? clamp100(res_raw) : Clamped{};
  double total = ce_c.value + (res_present ? lambda_resampler * res_c.value : 0.0);
  bool res_in_total = res_present;
  if (!std::isfinite(total)) {
    total = ce_c.value;
    res_in_total = false;
  }
  const Clamped tot_c = clamp100(total);
  out.loss = tot_c.value;
  out.loss_ce = ce_c.value;
  out.loss_resampler = res_c.value;
  const double g_tot = tot_c.pass ? grad_scale : 0.0;
  LossWeights w;
  w.w_ce = ce_c.pass && ce_count ? float(g_tot / double(ce_count)) : 0.f;
  w.w_res = (res_in_total && res_c.pass) ? float(g_tot * lambda_resampler) : 0.f;
  return w;
}

}  // namespace vr
