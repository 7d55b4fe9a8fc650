// The training step of V-Reflection on our engine (method.md §7-§10): frozen vision tower forward, BCM teacher
// forcing of the `<|lvr|>` slots, the LLM forward with activation checkpointing, cross-entropy plus the stage's
// latent loss (stage 1: symmetric decoupled alignment; stage 2: DAC distillation MSE + attention-transfer KL),
// upstream's clamps and guards, the backward pass, global-norm clipping and AdamW on fp32 master weights.
//
// One micro-batch per forward_backward(); gradients accumulate until optimizer_step() (gradient accumulation:
// the caller passes grad_scale = 1 / accumulation steps, as HF divides each micro-batch loss).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/bcm.h"
#include "model/config.h"
#include "model/dac.h"
#include "model/llm_train.h"
#include "model/vision_tower.h"
#include "model/weights.h"
#include "train/adamw.h"
#include "train/attention_capture.h"  // BoxAttention, AttentionCapture
#include "train/batch.h"
#include "train/param_store.h"

namespace vr {

struct TrainerConfig {
  int stage = 1;                  // 1: LLM + BCM train; 2: LLM + DAC train, BCM frozen teacher
  int latent_count = 8;           // BCM queries = <|lvr|> slots per box
  double lambda_resampler = 0.5;  // weight of the latent loss (upstream: 0.5 in stage 1, 1.0 in stage 2)
  double lambda_attn = 1.0;       // stage 2: weight of the KL inside the distillation loss
  AdamWConfig adamw;
  uint64_t seed = 42;             // initialisation of modules missing from the checkpoint
  int lvr_id = -1;                // optional check that every slot holds <|lvr|> (-1: skip)
  bool gradient_checkpointing = true;  // recompute each LLM layer in the backward (TrainLLM::set_checkpointing)
};

struct StepLosses {
  double loss = 0;            // clamped total that the gradient belongs to
  double loss_ce = 0;         // clamped to [0, 100]
  double loss_resampler = 0;  // unweighted latent loss (stage 1: alignment; stage 2: MSE + lambda_attn KL), clamped
  double loss_mse = 0;        // stage 2
  double loss_kl = 0;         // stage 2
  bool resampler_skipped = false;  // the NaN/Inf guard dropped the latent loss
  int64_t tokens = 0, targets = 0, boxes = 0;
};

class Trainer {
 public:
  // Builds the parameter store from the checkpoint (LLM weights copied to fp32 masters; BCM / DAC loaded when
  // the checkpoint has them, else initialised). Stage 2 needs the BCM in the checkpoint (a stage-1 result).
  Trainer(const ModelConfig& cfg, const std::vector<TensorRecord>& tensors, const TrainerConfig& tc);

  StepLosses forward_backward(const TrainBatch& batch, double grad_scale, AttentionCapture* capture = nullptr);
  // Clips (max_grad_norm > 0), applies AdamW with this lr, zeroes the gradients. Returns the norm before clipping.
  double optimizer_step(double lr, double max_grad_norm);
  double grad_norm() const { return grad_global_norm(ps_); }
  int64_t step() const { return step_; }
  void set_step(int64_t s) { step_ = s; }

  const ModelConfig& model_config() const { return cfg_; }
  const TrainerConfig& config() const { return tc_; }
  ParamStore& params() { return ps_; }
  const ParamStore& params() const { return ps_; }
  // Master weights changed from outside (load / set): refresh the compute copies.
  void weights_changed() { ps_.refresh_shadows(); }

 private:
  // Copies box maps out of the forward caches (student may be null: stage 1).
  void capture_attention(const TrainBatch& b, const BcmCache& teacher, const CrossAttnCache* student,
                         AttentionCapture& out) const;

  ModelConfig cfg_;
  TrainerConfig tc_;
  std::unique_ptr<WeightStore> ws_;
  std::unique_ptr<VisionTower> vision_;
  VisionWorkspace vit_work_;  // the ViT's activation buffers, kept from micro-batch to micro-batch
  ParamStore ps_;
  std::unique_ptr<TrainLLM> llm_;
  std::unique_ptr<BoxCompression> bcm_;
  std::unique_ptr<DynamicCompression> dac_;
  int64_t step_ = 0;
};

}  // namespace vr
