#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "train/cross_entropy.h"
#include "train/latent_losses.h"
#include "train/step_rules.h"
#include "train/step_profile.h"

namespace vr {

namespace {

// Gathers rows[i] of src [*, D] into dst [n, D].
void gather_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t D, int32_t shift = 0) {
  for (int64_t i = 0; i < n; i++) std::memcpy(dst + i * D, src + int64_t(rows[i] + shift) * D, size_t(D) * 4);
}
void scatter_add_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t D, int32_t shift = 0) {
  for (int64_t i = 0; i < n; i++) {
    float* d = dst + int64_t(rows[i] + shift) * D;
    const float* s = src + i * D;
    for (int64_t c = 0; c < D; c++) d[c] += s[c];
  }
}

}  // namespace

Trainer::Trainer(const ModelConfig& cfg, const std::vector<TensorRecord>& tensors, const TrainerConfig& tc)
    : cfg_(cfg), tc_(tc), ps_(cfg.compute) {
  cfg_.validate();
  validate_trainer_config(tc);
  const int64_t D = cfg_.text.hidden;
  ws_ = std::make_unique<WeightStore>(tensors);
  // The vision tower is frozen: its bf16 GEMM weights can live in the GEMM's packed layout, as in inference
  // (+15-25% on the ViT forward of every micro-batch). The trainable LLM weights are copied into the ParamStore.
  ws_->set_pack_linears(true);
  vision_ = std::make_unique<VisionTower>(cfg_.vision, *ws_, cfg_.compute);
  ws_->set_pack_linears(false);
  llm_ = std::make_unique<TrainLLM>(cfg_.text, ps_);
  llm_->set_checkpointing(tc.gradient_checkpointing);
  bcm_ = std::make_unique<BoxCompression>(ps_, "box_feature_resampler.", D, tc.latent_count, tc.stage == 1);
  if (tc.stage == 2) dac_ = std::make_unique<DynamicCompression>(ps_, "student_resampler.", D, true);
  ps_.allocate();
  llm_->load(*ws_);
  load_or_init_head(*ws_, bcm_->weights(), bcm_->queries(), "box_feature_resampler", tc.stage == 2, tc.seed);
  if (dac_) load_or_init_head(*ws_, dac_->weights(), nullptr, "student_resampler", false, tc.seed + 1);
  ps_.refresh_shadows();
}

StepLosses Trainer::forward_backward(const TrainBatch& b, double grad_scale, AttentionCapture* capture) {
  VR_CHECK(std::isfinite(grad_scale) && grad_scale >= 0, "trainer: grad scale must be finite and >= 0");
  validate_step_batch(b, cfg_, tc_);
  const int64_t T = b.tokens(), D = cfg_.text.hidden, B = b.boxes(), K = tc_.latent_count, R = B * K;
  StepLosses out;
  out.tokens = T;
  out.targets = b.num_targets;
  out.boxes = B;

  // 1. Frozen vision tower, input embeddings, image features into the image pads (in order).
  std::vector<float> feats;
  {
    PhaseTimer pt("vision forward");
    if (!b.grids.empty()) vision_->forward(b.pixel_values.data(), b.grids, feats, nullptr, &vit_work_);
  }
  VR_CHECK(int64_t(feats.size()) == b.visual_tokens() * D, "trainer: the vision tower returned ", feats.size() / D,
           " tokens, the batch expects ", b.visual_tokens());
  std::vector<float> x(size_t(T * D));
  llm_->embed(x.data(), b.input_ids.data(), T);
  std::vector<uint8_t> overwritten(size_t(T), 0);
  {
    const std::vector<int32_t> rows = image_pad_rows(b, cfg_.image_token_id);
    for (size_t j = 0; j < rows.size(); j++) {
      std::memcpy(&x[size_t(rows[j] * D)], &feats[j * size_t(D)], size_t(D) * 4);
      overwritten[size_t(rows[j])] = 1;
    }
  }

  // 2. BCM over each box's visual tokens; its (detached) output fills the <|lvr|> slots (teacher forcing).
  std::vector<float> Z(size_t(R * D));
  BcmCache bcm_cache;
  if (B > 0) {
    PhaseTimer pt("bcm forward");
    bcm_->forward(feats.data(), b.box_token_idx.data(), b.cu_box_tokens.data(), B, Z.data(), bcm_cache,
                  /*want_attn=*/tc_.stage == 2 || capture != nullptr);
    for (int64_t r = 0; r < R; r++) {
      std::memcpy(&x[size_t(int64_t(b.lvr_slots[r]) * D)], &Z[size_t(r * D)], size_t(D) * 4);
      overwritten[size_t(b.lvr_slots[r])] = 1;
    }
  }

  // 3. LLM forward and every loss value.
  std::vector<float> hidden(size_t(T * D));
  {
    PhaseTimer pt("llm forward");
    llm_->forward(x.data(), T, b.positions.data(), b.cu_seqlens.data(), b.samples(), hidden.data());
  }
  const Linear lm_head = llm_->lm_head();
  FusedCrossEntropy ce;
  double ce_sum = 0;
  {
    PhaseTimer pt("ce forward");
    ce_sum = ce.value(hidden.data(), b.targets.data(), T, D, lm_head);
  }

  std::vector<float> Hs(size_t(R * D)), Zs;  // stage 1: h[slot-1]; stage 2: h[slot] (DAC queries), DAC output
  CrossAttnCache dac_cache;
  AttnTransfer at;
  double res_raw = NAN;
  bool res_present = B > 0, mse_on = false, kl_on = false;
  if (capture) capture->boxes.clear();
  if (B > 0 && tc_.stage == 1) {
    if (capture) capture_attention(b, bcm_cache, nullptr, *capture);
    gather_rows(Hs.data(), hidden.data(), b.lvr_slots.data(), R, D, -1);
    if (all_finite(Hs.data(), R * D) && all_finite(Z.data(), R * D)) {
      res_raw = align_value(Hs.data(), Z.data(), R * D);
      mse_on = true;
    } else {
      res_raw = 0;
      out.resampler_skipped = true;
    }
  } else if (B > 0) {
    gather_rows(Hs.data(), hidden.data(), b.lvr_slots.data(), R, D);
    Zs.assign(size_t(R * D), 0.f);
    dac_->forward(Hs.data(), B, int(K), feats.data(), b.cu_sample_visual.data(), b.box_sample.data(), Zs.data(),
                  dac_cache);
    if (capture) capture_attention(b, bcm_cache, &dac_cache, *capture);
    const bool finite = all_finite(Zs.data(), R * D) && all_finite(Z.data(), R * D);
    if (finite) {
      at.nb = B;
      at.nq = int(K);
      at.A = dac_cache.attn.data();
      at.a_off = dac_cache.attn_off.data();
      at.At = bcm_cache.ca.attn.data();
      at.t_off = bcm_cache.ca.attn_off.data();
      at.local_idx = b.box_local_idx.data();
      at.cu_box = b.cu_box_tokens.data();
    }
    // The guards and the sum are train/step_rules' (shared with the CUDA trainer).
    const Stage2Latent s2 = stage2_latent_loss(finite, finite ? mse_value(Zs.data(), Z.data(), R * D) : NAN,
                                               finite ? kl_value(at) : NAN, tc_.lambda_attn, out);
    res_raw = s2.res_raw;
    mse_on = s2.mse_on;
    kl_on = s2.kl_on;
  }

  // 4. Upstream's loss assembly (method.md §10.1): components clamped to [0, 100], total clamped again.
  const LossWeights lw =
      assemble_losses(ce_sum, ce.count(), res_present, res_raw, tc_.lambda_resampler, grad_scale, out);
  const float w_ce = lw.w_ce, w_res = lw.w_res;

  // 5. Backward: loss gradients into the hidden states (and the heads), then through the LLM and embeddings.
  std::vector<float> dhidden(size_t(T * D), 0.f);
  {
    PhaseTimer pt("ce backward");
    ce.backward(hidden.data(), w_ce, lm_head, llm_->lm_head_grad(), dhidden.data());
  }
  if (B > 0 && tc_.stage == 1 && mse_on && w_res != 0.f) {
    std::vector<float> dH(size_t(R * D), 0.f), dZ(size_t(R * D), 0.f);
    align_grad(Hs.data(), Z.data(), R * D, w_res, dH.data(), dZ.data());
    scatter_add_rows(dhidden.data(), dH.data(), b.lvr_slots.data(), R, D, -1);
    bcm_->backward(bcm_cache, dZ.data());
  } else if (B > 0 && tc_.stage == 2 && mse_on && w_res != 0.f) {
    std::vector<float> dZs(size_t(R * D), 0.f), dA(dac_cache.attn.size(), 0.f), dHq(size_t(R * D), 0.f);
    mse_grad(Zs.data(), Z.data(), R * D, w_res, dZs.data());
    if (kl_on) kl_grad(at, float(double(w_res) * tc_.lambda_attn), dA.data());
    dac_->backward(dac_cache, dZs.data(), kl_on ? dA.data() : nullptr, dHq.data());
    scatter_add_rows(dhidden.data(), dHq.data(), b.lvr_slots.data(), R, D);
  }
  std::vector<float> dx(size_t(T * D));
  {
    PhaseTimer pt("llm backward");
    llm_->backward(dhidden.data(), dx.data());
  }
  ps_.mark_grads_written();
  for (int64_t i = 0; i < T; i++)
    if (overwritten[size_t(i)]) std::fill(dx.begin() + i * D, dx.begin() + (i + 1) * D, 0.f);
  llm_->embed_backward(dx.data(), b.input_ids.data(), T);
  return out;
}

void Trainer::capture_attention(const TrainBatch& b, const BcmCache& teacher, const CrossAttnCache* student,
                                AttentionCapture& out) const {
  const int64_t B = b.boxes(), K = tc_.latent_count;
  const CrossAttnCache& t = teacher.ca;
  VR_CHECK(int64_t(t.attn_off.size()) == B + 1, "attention capture: the teacher's maps are missing");
  for (int64_t box = 0; box < captured_boxes(out, B); box++) {
    // The caches keep each box's maps compact: the teacher's [K, N_box], the student's [K, S_sample].
    const int64_t N = b.cu_box_tokens[box + 1] - b.cu_box_tokens[box];
    VR_CHECK(t.attn_off[box + 1] - t.attn_off[box] == K * N, "attention capture: box ", box, "'s teacher map has ",
             t.attn_off[box + 1] - t.attn_off[box], " values, expected ", K * N);
    const float* A = nullptr;
    int64_t S = 0;
    if (student) {
      const int32_t smp = b.box_sample[box];
      S = b.cu_sample_visual[smp + 1] - b.cu_sample_visual[smp];
      VR_CHECK(student->attn_off[box + 1] - student->attn_off[box] == K * S, "attention capture: box ", box,
               "'s student map has ", student->attn_off[box + 1] - student->attn_off[box], " values, expected ",
               K * S);
      A = student->attn.data() + student->attn_off[box];
    }
    out.boxes.push_back(box_attention(b, box, K, t.attn.data() + t.attn_off[box], N, A, S));
  }
}

double Trainer::optimizer_step(double lr, double max_grad_norm) {
  VR_CHECK(std::isfinite(max_grad_norm), "trainer: max_grad_norm must be finite");
  // Two sweeps over the optimizer state: the global norm, then clipping + AdamW + bf16 copies + gradient reset.
  double norm = 0;
  {
    PhaseTimer pt("opt: grad norm");
    norm = grad_global_norm(ps_);
  }
  step_ += 1;
  {
    PhaseTimer pt("opt: clip + adamw + bf16 + zero");
    adamw_update(ps_, tc_.adamw, lr, step_, clip_coefficient(norm, max_grad_norm), /*zero_grads=*/true);
  }
  step_profile_report("training step");
  return norm;
}

}  // namespace vr
