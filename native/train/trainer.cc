#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "train/cross_entropy.h"
#include "train/head_init.h"
#include "train/latent_losses.h"
#include "train/step_profile.h"

namespace vr {

namespace {

// torch.clamp(x, 0, 100) after nan_to_num: the value, and whether gradient passes (finite and inside).
struct Clamped {
  double value = 0;
  bool pass = false;
};
Clamped clamp100(double x) {
  if (!std::isfinite(x)) return {0.0, false};
  return {std::min(100.0, std::max(0.0, x)), x >= 0 && x <= 100};
}

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
  VR_CHECK(tc.stage == 1 || tc.stage == 2, "trainer: stage must be 1 or 2, got ", tc.stage);
  VR_CHECK(tc.latent_count > 0 && tc.latent_count <= 1024, "trainer: latent count must be in [1, 1024]");
  VR_CHECK(std::isfinite(tc.lambda_resampler) && tc.lambda_resampler >= 0, "trainer: lambda must be >= 0");
  VR_CHECK(std::isfinite(tc.lambda_attn) && tc.lambda_attn >= 0, "trainer: lambda_attn must be >= 0");
  const AdamWConfig& a = tc.adamw;
  VR_CHECK(a.beta1 >= 0 && a.beta1 < 1 && a.beta2 >= 0 && a.beta2 < 1, "trainer: AdamW betas must be in [0, 1)");
  VR_CHECK(a.eps > 0 && a.weight_decay >= 0, "trainer: AdamW eps must be > 0 and weight decay >= 0");
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
  load_or_init_head(bcm_->weights(), bcm_->queries(), "box_feature_resampler", tc.stage == 2);
  if (dac_) load_or_init_head(dac_->weights(), nullptr, "student_resampler", false);
  ps_.refresh_shadows();
}

void Trainer::load_or_init_head(const ResamplerWeights& w, Param* queries, const char* what, bool required) {
  std::vector<Param*> ts = {w.in_w, w.in_b, w.out_w, w.out_b, w.ln_w, w.ln_b};
  if (queries) ts.push_back(queries);
  size_t present = 0;
  for (Param* p : ts) present += ws_->has(p->name);
  if (present == ts.size()) {
    for (Param* p : ts) {
      const TensorView& t = ws_->get(p->name, p->shape);
      convert_to_f32(p->w, t.data, t.dtype, size_t(p->numel));
    }
    return;
  }
  VR_CHECK(present == 0, "checkpoint has ", present, " of the ", ts.size(), " ", what, ".* tensors (",
           "a partial module cannot be loaded)");
  VR_CHECK(!required, "stage 2 needs a stage-1 checkpoint: no ", what, ".* tensors in the model");
  InitRng rng(tc_.seed + (queries ? 0 : 1));
  if (queries) init_queries(*queries, rng);
  init_resampler(w, rng);
}

StepLosses Trainer::forward_backward(const TrainBatch& b, double grad_scale, AttentionCapture* capture) {
  VR_CHECK(std::isfinite(grad_scale) && grad_scale >= 0, "trainer: grad scale must be finite and >= 0");
  VR_CHECK(b.latent_count == tc_.latent_count || b.boxes() == 0, "batch: latentCount ", b.latent_count,
           " differs from the trainer's ", tc_.latent_count);
  validate_batch(b, cfg_, tc_.lvr_id);
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
    int64_t j = 0;
    for (int64_t i = 0; i < T; i++) {
      if (b.input_ids[i] != cfg_.image_token_id) continue;
      std::memcpy(&x[size_t(i * D)], &feats[size_t(j * D)], size_t(D) * 4);
      overwritten[size_t(i)] = 1;
      j++;
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
  // torch's mean over zero targets is NaN, which upstream's nan_to_num turns into 0.
  const double ce_raw = ce.count() ? ce_sum / double(ce.count()) : NAN;

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
    if (all_finite(Zs.data(), R * D) && all_finite(Z.data(), R * D)) {
      out.loss_mse = mse_value(Zs.data(), Z.data(), R * D);
      mse_on = true;
      at.nb = B;
      at.nq = int(K);
      at.A = dac_cache.attn.data();
      at.a_off = dac_cache.attn_off.data();
      at.At = bcm_cache.ca.attn.data();
      at.t_off = bcm_cache.ca.attn_off.data();
      at.local_idx = b.box_local_idx.data();
      at.cu_box = b.cu_box_tokens.data();
      out.loss_kl = kl_value(at);
      kl_on = std::isfinite(out.loss_kl);
      res_raw = out.loss_mse + (kl_on ? tc_.lambda_attn * out.loss_kl : 0.0);
      if (!std::isfinite(res_raw)) {
        res_raw = 0;
        mse_on = kl_on = false;
        out.resampler_skipped = true;
      }
    } else {
      res_raw = 0;
      out.resampler_skipped = true;
    }
  }

  // 4. Upstream's loss assembly (method.md §10.1): components clamped to [0, 100], total clamped again.
  const Clamped ce_c = clamp100(ce_raw), res_c = res_present ? clamp100(res_raw) : Clamped{};
  double total = ce_c.value + (res_present ? tc_.lambda_resampler * res_c.value : 0.0);
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
  const float w_ce = ce_c.pass ? float(g_tot / double(ce.count())) : 0.f;
  const float w_res = (res_in_total && res_c.pass) ? float(g_tot * tc_.lambda_resampler) : 0.f;

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
  const int64_t n = out.max_boxes < 0 ? B : std::min(B, out.max_boxes);
  const CrossAttnCache& t = teacher.ca;
  VR_CHECK(int64_t(t.attn_off.size()) == B + 1, "attention capture: the teacher's maps are missing");
  for (int64_t box = 0; box < n; box++) {
    BoxAttention a;
    a.box = box;
    a.sample = b.box_sample[box];
    const int32_t v0 = b.cu_sample_visual[a.sample];
    a.tokens = b.cu_sample_visual[a.sample + 1] - v0;
    // The sample's first image is the one whose tokens start where the sample's do (validate_batch checked the
    // tables, and a sample that owns a box has visual tokens).
    a.image = -1;
    for (size_t i = 0; i + 1 < b.cu_image_tokens.size(); i++)
      if (b.cu_image_tokens[i] == v0 && b.cu_image_tokens[i + 1] > v0) {
        a.image = int(i);
        break;
      }
    VR_CHECK(a.image >= 0, "attention capture: box ", box, "'s sample ", a.sample, " has no image");
    a.grid = b.grids[size_t(a.image)];
    const int32_t j0 = b.cu_box_tokens[box], j1 = b.cu_box_tokens[box + 1];
    a.box_tokens.assign(b.box_local_idx.begin() + j0, b.box_local_idx.begin() + j1);
    const int64_t S = a.tokens, N = j1 - j0;
    VR_CHECK(t.attn_off[box + 1] - t.attn_off[box] == K * N, "attention capture: box ", box, "'s teacher map has ",
             t.attn_off[box + 1] - t.attn_off[box], " values, expected ", K * N);
    // Scatter as the KL does (latent_losses.h): T[q, local_idx[j]] = At[q, j], zero elsewhere.
    a.teacher.assign(size_t(K * S), 0.f);
    const float* At = t.attn.data() + t.attn_off[box];
    for (int64_t j = 0; j < N; j++) {
      const int32_t s = a.box_tokens[size_t(j)];
      VR_CHECK(s >= 0 && s < S, "attention capture: box ", box, " token ", s, " is outside its sample's ", S,
               " visual tokens");
      for (int64_t q = 0; q < K; q++) a.teacher[size_t(q * S + s)] = At[q * N + j];
    }
    if (student) {
      VR_CHECK(student->attn_off[box + 1] - student->attn_off[box] == K * S, "attention capture: box ", box,
               "'s student map has ", student->attn_off[box + 1] - student->attn_off[box], " values, expected ",
               K * S);
      const float* A = student->attn.data() + student->attn_off[box];
      a.student.assign(A, A + K * S);
    }
    out.boxes.push_back(std::move(a));
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
