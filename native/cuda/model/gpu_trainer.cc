#include "cuda/model/gpu_trainer.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "cuda/model/cuda_runtime.h"
#include "cuda/model/gpu_attention_capture.h"
#include "train/adamw.h"
#include "train/state_io.h"
#include "train/step_rules.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

void zero(void* p, size_t bytes, Stream s, const char* what) {
  const cudaError_t e = cudaMemsetAsync(p, 0, bytes, s);
  VR_CHECK(e == cudaSuccess, "cuda trainer: clearing ", what, " failed: ", cudaGetErrorString(e));
}

}  // namespace

GpuTrainer::GpuTrainer(const ModelConfig& cfg, const std::vector<TensorRecord>& tensors, const TrainerConfig& tc,
                       OptimizerPlacement where, Stream s, int64_t stream_chunk)
    : cfg_(cfg), tc_(tc), s_(s), ps_(DType::F32), ce_(s) {
  cfg_.validate();
  validate_trainer_config(tc);
  const int64_t D = cfg_.text.hidden;
  ws_ = std::make_unique<WeightStore>(tensors);  // raw views: DeviceWeights never reads packed linears
  cpu_llm_ = std::make_unique<TrainLLM>(cfg_.text, ps_);
  cpu_bcm_ = std::make_unique<BoxCompression>(ps_, "box_feature_resampler.", D, tc.latent_count, tc.stage == 1);
  if (tc.stage == 2) cpu_dac_ = std::make_unique<DynamicCompression>(ps_, "student_resampler.", D, true);
  ps_.allocate(host_storage(where));  // gpu: weights only; host: weights + moments (gpu_train_params.h)
  cpu_llm_->load(*ws_);
  load_or_init_head(*ws_, cpu_bcm_->weights(), cpu_bcm_->queries(), "box_feature_resampler", tc.stage == 2, tc.seed);
  if (cpu_dac_) load_or_init_head(*ws_, cpu_dac_->weights(), nullptr, "student_resampler", false, tc.seed + 1);
  frozen_ = std::make_unique<DeviceWeights>(cfg_, *ws_, WeightParts::VisionOnly);
  vision_ = std::make_unique<GpuVisionTower>(*frozen_, s_);
  gp_ = std::make_unique<GpuTrainParams>(ps_, where, GpuTrainLLM::param_layout(cfg_.text), s_,
                                         stream_chunk > 0 ? stream_chunk : GpuTrainParams::kDefaultChunkElems);
  gp_->upload();
  llm_ = std::make_unique<GpuTrainLLM>(cfg_.text, *gp_, s_);
  llm_->set_checkpointing(tc.gradient_checkpointing);  // off: every layer's activations kept (gpu_train_llm.h)
  bcm_ = std::make_unique<GpuBoxCompression>(*gp_, "box_feature_resampler.", D, tc.latent_count, s_);
  if (tc.stage == 2) dac_ = std::make_unique<GpuDynamicCompression>(*gp_, "student_resampler.", D, s_);
}

StepLosses GpuTrainer::forward_backward(const TrainBatch& b, double grad_scale, AttentionCapture* capture) {
  VR_CHECK(std::isfinite(grad_scale) && grad_scale >= 0, "trainer: grad scale must be finite and >= 0");
  validate_step_batch(b, cfg_, tc_);
  const int64_t T = b.tokens(), D = cfg_.text.hidden, B = b.boxes(), K = tc_.latent_count, R = B * K;
  const int64_t Vt = b.visual_tokens();
  StepLosses out;
  out.tokens = T;
  out.targets = b.num_targets;
  out.boxes = B;
  const std::vector<int32_t> pad_rows = image_pad_rows(b, cfg_.image_token_id);
  const std::vector<int32_t> prev_rows = lvr_previous_rows(b);
  VR_CHECK(int64_t(pad_rows.size()) == Vt, "trainer: ", pad_rows.size(), " <|image_pad|> tokens, the batch has ",
           Vt, " visual tokens");

  // Stage 2's layouts: the teacher's attention padded [B, K, max box] (GpuBoxCompression) and compacted to the
  // KL's [K, N_b] per box (gathered element-wise by `tsel`); the student's padded [B, K, max sample] (its padding
  // columns carry no teacher mass, so a_off[b] = b K S_max is a valid KL layout, see gpu_train_dac.h). Stage 1
  // keeps the teacher's padded map only for an attention capture.
  const bool st2 = tc_.stage == 2 && B > 0;
  const bool keep_teacher = B > 0 && (st2 || capture);
  int64_t Nmax = 0, Smax = 0, Tn = 0;
  std::vector<int32_t> tsel;
  std::vector<int64_t> a_off, t_off;
  for (int64_t i = 0; i < B && keep_teacher; i++) {
    Nmax = std::max<int64_t>(Nmax, b.cu_box_tokens[i + 1] - b.cu_box_tokens[i]);
    const int32_t smp = b.box_sample[i];
    Smax = std::max<int64_t>(Smax, b.cu_sample_visual[smp + 1] - b.cu_sample_visual[smp]);
  }
  if (st2) {
    a_off.resize(size_t(B + 1));
    t_off.resize(size_t(B + 1));
    for (int64_t i = 0; i <= B; i++) {
      a_off[size_t(i)] = i * K * Smax;
      t_off[size_t(i)] = K * b.cu_box_tokens[i];
    }
    for (int64_t i = 0; i < B; i++) {
      const int64_t n = b.cu_box_tokens[i + 1] - b.cu_box_tokens[i];
      for (int64_t q = 0; q < K; q++)
        for (int64_t j = 0; j < n; j++) tsel.push_back(int32_t((i * K + q) * Nmax + j));
    }
    Tn = int64_t(tsel.size());
  }
  const int64_t nbox_tok = B > 0 ? b.cu_box_tokens[B] : 0;

  // This micro-batch's device buffers, one arena (dx reuses dhidden: the decoder backward may alias them).
  int32_t *ids = nullptr, *pads = nullptr, *slots = nullptr, *prev = nullptr;
  float *feats = nullptr, *x = nullptr, *hidden = nullptr, *Z = nullptr, *H = nullptr, *dhidden = nullptr;
  float *dH = nullptr, *dZ = nullptr;
  LossValue* align = nullptr;
  // Stage 2: student output, teacher / student maps, the KL's tables and values.
  float *Zs = nullptr, *attn_t = nullptr, *At = nullptr, *A = nullptr, *dA = nullptr;
  int32_t *tsel_dev = nullptr, *local_idx = nullptr, *cu_box = nullptr;
  int64_t *a_off_dev = nullptr, *t_off_dev = nullptr;
  LossValue* kl = nullptr;
  auto carve = [&](auto& a) {
    ids = a.template take<int32_t>(T);
    pads = a.template take<int32_t>(Vt);
    slots = a.template take<int32_t>(R);
    prev = a.template take<int32_t>(R);
    feats = a.template take<float>(Vt * D);
    x = a.template take<float>(T * D);
    hidden = a.template take<float>(T * D);
    dhidden = a.template take<float>(T * D);
    Z = a.template take<float>(R * D);
    H = a.template take<float>(R * D);
    dH = a.template take<float>(R * D);
    dZ = a.template take<float>(R * D);
    align = a.template take<LossValue>(1);
    if (keep_teacher) attn_t = a.template take<float>(R * Nmax);
    if (st2) {
      Zs = a.template take<float>(R * D);
      At = a.template take<float>(Tn);
      A = a.template take<float>(R * Smax);
      dA = a.template take<float>(R * Smax);
      tsel_dev = a.template take<int32_t>(Tn);
      local_idx = a.template take<int32_t>(nbox_tok);
      cu_box = a.template take<int32_t>(B + 1);
      a_off_dev = a.template take<int64_t>(B + 1);
      t_off_dev = a.template take<int64_t>(B + 1);
      kl = a.template take<LossValue>(1);
    }
  };
  ArenaSizer size;
  carve(size);
  step_arena_ = DeviceArena();
  step_arena_ = DeviceArena(size.bytes(), "training step activations");
  carve(step_arena_);
  copy_to_device(ids, b.input_ids.data(), size_t(T) * 4, "training token ids", s_);
  if (Vt) copy_to_device(pads, pad_rows.data(), size_t(Vt) * 4, "image pad rows", s_);
  if (R) {
    copy_to_device(slots, b.lvr_slots.data(), size_t(R) * 4, "<|lvr|> slots", s_);
    copy_to_device(prev, prev_rows.data(), size_t(R) * 4, "<|lvr|> previous rows", s_);
  }
  if (st2) {
    copy_to_device(tsel_dev, tsel.data(), size_t(Tn) * 4, "teacher map gather", s_);
    copy_to_device(local_idx, b.box_local_idx.data(), size_t(nbox_tok) * 4, "box local token indices", s_);
    copy_to_device(cu_box, b.cu_box_tokens.data(), size_t(B + 1) * 4, "box token offsets", s_);
    copy_to_device(a_off_dev, a_off.data(), size_t(B + 1) * 8, "student map offsets", s_);
    copy_to_device(t_off_dev, t_off.data(), size_t(B + 1) * 8, "teacher map offsets", s_);
  }

  // 1-3. Frozen ViT, embeddings, visual rows into the image pads, BCM output into the <|lvr|> slots (detached;
  // stage 2: the frozen teacher, its attention kept for the KL; stage 1 keeps it only for a capture).
  if (!b.grids.empty()) vision_->forward(feats, b.pixel_values.data(), b.grids);
  llm_->embed(x, ids, T, /*check_ids=*/false);  // validate_batch checked every id on the host
  if (Vt) scatter_rows(x, feats, pads, Vt, D, T, s_);
  if (B > 0) {
    bcm_->forward(Z, feats, Vt, b.box_token_idx.data(), b.cu_box_tokens.data(), B, attn_t);
    scatter_rows(x, Z, slots, R, D, T, s_);
  }

  // 4. Decoder forward and every loss value.
  llm_->forward(hidden, x, T, b.positions.data(), b.cu_seqlens.data(), b.samples());
  const double ce_sum = ce_.value(hidden, b.targets.data(), T, D, llm_->lm_head_bf16(), cfg_.text.vocab);
  double res_raw = NAN;
  bool align_on = false, kl_on = false;
  KlArgs ka;
  if (B > 0 && tc_.stage == 1) {
    // H = hidden[slot - 1] (gathered as embedding rows of the [T, D] hidden states), then the alignment value;
    // its nonfinite count is the CPU's all_finite guard over H and Z.
    embedding_forward(H, prev, R, hidden, T, D, s_);
    cuda::align_value(align, H, Z, R * D, s_);
    LossValue v{};
    copy_to_host(&v, align, sizeof v, "alignment loss", s_);
    if (v.nonfinite == 0) {
      res_raw = v.value;
      align_on = true;
    } else {
      res_raw = 0;
      out.resampler_skipped = true;
    }
  } else if (st2) {
    // Queries = hidden AT the slots; the student over each box's sample; MSE(Zs, Z) (its nonfinite count is the
    // CPU's all_finite guard over Zs and Z) and the KL between the teacher's compacted map and the student's.
    embedding_forward(H, slots, R, hidden, T, D, s_);
    dac_->forward(Zs, H, B, int(K), feats, Vt, b.cu_sample_visual.data(), b.samples(), b.box_sample.data(), A);
    embedding_forward(At, tsel_dev, Tn, attn_t, R * Nmax, 1, s_);
    cuda::mse_value(align, Zs, Z, R * D, s_);
    ka.nb = B;
    ka.nq = int(K);
    ka.A = A;
    ka.a_off = a_off_dev;
    ka.At = At;
    ka.t_off = t_off_dev;
    ka.local_idx = local_idx;
    ka.cu_box = cu_box;
    ka.a_total = a_off[size_t(B)];
    cuda::kl_value(kl, ka, s_);
    LossValue mv{}, kv{};
    copy_to_host(&mv, align, sizeof mv, "MSE loss", s_);
    copy_to_host(&kv, kl, sizeof kv, "KL loss", s_);
    const Stage2Latent s2 = stage2_latent_loss(mv.nonfinite == 0, mv.value, kv.value, tc_.lambda_attn, out);
    res_raw = s2.res_raw;
    align_on = s2.mse_on;
    kl_on = s2.kl_on;
  }

  // --attention-maps: the captured boxes' maps, as the latent losses saw them (downloads only those rows).
  if (capture) capture_box_attention(b, K, attn_t, Nmax, st2 ? A : nullptr, Smax, *capture, s_);

  // 5. Upstream's loss assembly, the CPU Trainer's code.
  const LossWeights lw = assemble_losses(ce_sum, ce_.count(), B > 0, res_raw, tc_.lambda_resampler, grad_scale, out);

  // 6. Backward.
  zero(dhidden, size_t(T * D) * sizeof(float), s_, "dhidden");
  ce_.backward(hidden, lw.w_ce, llm_->lm_head_bf16(), llm_->lm_head_grad(), dhidden);
  if (B > 0 && tc_.stage == 1 && align_on && lw.w_res != 0.f) {
    zero(dH, size_t(R * D) * sizeof(float), s_, "dH");
    zero(dZ, size_t(R * D) * sizeof(float), s_, "dZ");
    cuda::align_grad(dH, dZ, H, Z, R * D, lw.w_res, s_);
    // dhidden[slot - 1] += dH: the rows are distinct, so the embedding backward is the row scatter-add.
    embedding_backward(dhidden, dH, prev, R, T, D, s_);
    bcm_->backward(dZ);
  } else if (st2 && align_on && lw.w_res != 0.f) {
    zero(dH, size_t(R * D) * sizeof(float), s_, "dHq");
    zero(dZ, size_t(R * D) * sizeof(float), s_, "dZs");
    cuda::mse_grad(dZ, Zs, Z, R * D, lw.w_res, s_);
    if (kl_on) {
      zero(dA, size_t(R * Smax) * sizeof(float), s_, "dA");
      cuda::kl_grad(dA, ka, float(double(lw.w_res) * tc_.lambda_attn), s_);
    }
    dac_->backward(dZ, kl_on ? dA : nullptr, dH);
    // dhidden[slot] += dHq (distinct rows).
    embedding_backward(dhidden, dH, slots, R, T, D, s_);
  }
  float* dx = dhidden;
  llm_->backward(dx, dhidden);
  // Overwritten embedding rows get no gradient (the frozen ViT's and the detached BCM output's rows).
  if (Vt) scatter_rows_backward(static_cast<float*>(nullptr), dx, pads, Vt, D, T, s_);
  if (R) scatter_rows_backward(static_cast<float*>(nullptr), dx, slots, R, D, T, s_);
  llm_->embed_backward(dx, ids, T);
  return out;
}

double GpuTrainer::optimizer_step(double lr, double max_grad_norm) {
  VR_CHECK(std::isfinite(max_grad_norm), "trainer: max_grad_norm must be finite");
  const double norm = gp_->grad_norm();
  step_ += 1;
  gp_->step(tc_.adamw, lr, step_, clip_coefficient(norm, max_grad_norm));
  return norm;
}

void GpuTrainer::save_state(const std::string& path) {
  GpuTrainParams* gp = gp_.get();
  save_param_state(ps_, step_, tc_.stage, path, [gp](const Param& p, StateField f, int64_t off, int64_t n, float* dst) {
    gp->read_state(p, f, off, n, dst);
  });
}

void GpuTrainer::load_state(const std::vector<TensorRecord>& records, int64_t step) {
  GpuTrainParams* gp = gp_.get();
  load_param_state(ps_, records, step, [gp](const Param& p, StateField f, const float* src) {
    gp->write_state(p, f, src);
  });
  step_ = step;
  gp_->zero_grad();
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
