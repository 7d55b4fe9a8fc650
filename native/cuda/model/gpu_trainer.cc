#include "cuda/model/gpu_trainer.h"

#include <cmath>

#include "core/error.h"
#include "cuda/model/cuda_runtime.h"
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
                       OptimizerPlacement where, Stream s)
    : cfg_(cfg), tc_(tc), s_(s), ps_(DType::F32), ce_(s) {
  cfg_.validate();
  validate_trainer_config(tc);
  VR_CHECK(tc.stage == 1, "cuda trainer: stage 2 (the DAC head) is not on the GPU yet; train it with --device cpu");
  VR_CHECK(tc.gradient_checkpointing, "cuda trainer: only the checkpointed decoder exists on the GPU (gradient "
           "checkpointing off is CPU-only)");
  const int64_t D = cfg_.text.hidden;
  ws_ = std::make_unique<WeightStore>(tensors);  // raw views: DeviceWeights never reads packed linears
  cpu_llm_ = std::make_unique<TrainLLM>(cfg_.text, ps_);
  cpu_bcm_ = std::make_unique<BoxCompression>(ps_, "box_feature_resampler.", D, tc.latent_count, /*trainable=*/true);
  ps_.allocate();
  cpu_llm_->load(*ws_);
  load_or_init_head(*ws_, cpu_bcm_->weights(), cpu_bcm_->queries(), "box_feature_resampler", false, tc.seed);
  frozen_ = std::make_unique<DeviceWeights>(cfg_, *ws_, /*with_vision=*/true);
  vision_ = std::make_unique<GpuVisionTower>(*frozen_, s_);
  gp_ = std::make_unique<GpuTrainParams>(ps_, where, GpuTrainLLM::param_layout(cfg_.text), s_);
  gp_->upload();
  llm_ = std::make_unique<GpuTrainLLM>(cfg_.text, *gp_, s_);
  bcm_ = std::make_unique<GpuBoxCompression>(*gp_, "box_feature_resampler.", D, tc.latent_count, s_);
}

StepLosses GpuTrainer::forward_backward(const TrainBatch& b, double grad_scale) {
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

  // This micro-batch's device buffers, one arena (dx reuses dhidden: the decoder backward may alias them).
  int32_t *ids = nullptr, *pads = nullptr, *slots = nullptr, *prev = nullptr;
  float *feats = nullptr, *x = nullptr, *hidden = nullptr, *Z = nullptr, *H = nullptr, *dhidden = nullptr;
  float *dH = nullptr, *dZ = nullptr;
  LossValue* align = nullptr;
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

  // 1-3. Frozen ViT, embeddings, visual rows into the image pads, BCM output into the <|lvr|> slots (detached).
  if (!b.grids.empty()) vision_->forward(feats, b.pixel_values.data(), b.grids);
  llm_->embed(x, ids, T, /*check_ids=*/false);  // validate_batch checked every id on the host
  if (Vt) scatter_rows(x, feats, pads, Vt, D, T, s_);
  if (B > 0) {
    bcm_->forward(Z, feats, Vt, b.box_token_idx.data(), b.cu_box_tokens.data(), B);
    scatter_rows(x, Z, slots, R, D, T, s_);
  }

  // 4. Decoder forward and every loss value.
  llm_->forward(hidden, x, T, b.positions.data(), b.cu_seqlens.data(), b.samples());
  const double ce_sum = ce_.value(hidden, b.targets.data(), T, D, llm_->lm_head_bf16(), cfg_.text.vocab);
  double res_raw = NAN;
  bool align_on = false;
  if (B > 0) {
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
  }

  // 5. Upstream's loss assembly, the CPU Trainer's code.
  const LossWeights lw = assemble_losses(ce_sum, ce_.count(), B > 0, res_raw, tc_.lambda_resampler, grad_scale, out);

  // 6. Backward.
  zero(dhidden, size_t(T * D) * sizeof(float), s_, "dhidden");
  ce_.backward(hidden, lw.w_ce, llm_->lm_head_bf16(), llm_->lm_head_grad(), dhidden);
  if (B > 0 && align_on && lw.w_res != 0.f) {
    zero(dH, size_t(R * D) * sizeof(float), s_, "dH");
    zero(dZ, size_t(R * D) * sizeof(float), s_, "dZ");
    cuda::align_grad(dH, dZ, H, Z, R * D, lw.w_res, s_);
    // dhidden[slot - 1] += dH: the rows are distinct, so the embedding backward is the row scatter-add.
    embedding_backward(dhidden, dH, prev, R, T, D, s_);
    bcm_->backward(dZ);
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
  gp_->download();
  save_param_state(ps_, step_, tc_.stage, path);
}

void GpuTrainer::load_state(const std::vector<TensorRecord>& records, int64_t step) {
  load_param_state(ps_, records, step);
  step_ = step;
  ps_.zero_grad();
  gp_->zero_grad();
  gp_->upload();
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
