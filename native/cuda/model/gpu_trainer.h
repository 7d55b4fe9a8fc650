// The training step of V-Reflection on the CUDA backend: the GPU twin of train/trainer.h (vr::Trainer), same API
// shape - forward_backward(batch, grad_scale) -> StepLosses, optimizer_step(lr, max_grad_norm) -> grad norm,
// download() of the parameters into the CPU ParamStore for the checkpoint writer. Stages 1 and 2.
//
// One micro-batch (method.md §7-§10, as the CPU Trainer):
//   1. frozen vision tower (GpuVisionTower over bf16 DeviceWeights) -> visual rows V [Vtok, D];
//   2. token embeddings, V scattered into the <|image_pad|> rows;
//   3. BCM over each box's rows of V (GpuBoxCompression) -> Z [B*K, D], teacher-forced into the <|lvr|> slots;
//   4. decoder forward (GpuTrainLLM, packed varlen, checkpointed or not: TrainerConfig::gradient_checkpointing), lm_head + CE value (GpuFusedCrossEntropy),
//      stage-1 alignment value between H (hidden at slot - 1) and Z (align_value: one LossValue download);
//   5. upstream's clamps and NaN/Inf guard on the host (train/step_rules.h: the CPU Trainer's own code) decide
//      the loss weights;
//   6. backward: CE into dhidden (+ lm_head gradient), the alignment's dH added at the slot - 1 rows and dZ
//      through the BCM, decoder backward, the overwritten rows' dx zeroed (image pads, slots), embedding backward.
// Stage 2 (method.md §9): the BCM is a frozen teacher (no gradient): its Z fills the slots as in stage 1 and its
// head-averaged attention At is kept; the DAC student (GpuDynamicCompression) takes the hidden states AT the slots
// as queries over all of the box's sample's visual rows -> Zs and its attention A; the latent loss is
// MSE(Zs, sg Z) + lambda_attn x KL(At scattered to the sample's positions || A), guarded and summed by
// train/step_rules' stage2_latent_loss (the CPU's code); backward: mse_grad -> dZs, kl_grad -> dA, the DAC backward
// with both, its dHq added at the slot rows of dhidden.
// Gradients accumulate on the device until optimizer_step (GpuTrainParams: norm, clip, AdamW, gpu or host
// placement). Precision: the training pieces' (bf16 GEMM / attention operands, fp32 accumulation, fp32 residual
// stream, fp32 gradients and master weights).
//
// Host memory: the CPU ParamStore holds only what the optimizer placement needs there (gpu_train_params.h
// host_storage): under `gpu` the fp32 weights (the checkpoint is loaded into them and uploaded; download()
// refreshes them for getTensor); under `host` the fp32 masters and both AdamW moments, plus GpuTrainParams' two
// pinned staging slots. No placement keeps a host gradient array: gradients are read per tensor from the device
// (device_params().read_grad). save_state / load_state stream the trainer state per tensor between the state
// file and wherever each value lives (GpuTrainParams::read_state / write_state: the device under `gpu`, the host
// masters and moments under `host`), so saving needs no host copy of the device's moments.
// Device memory: a vision-only DeviceWeights (the frozen ViT in bf16; the decoder's weights live once, in
// GpuTrainParams), the parameters' arena, one micro-batch's step arena.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cuda/kernels/cuda_kernels.h"
#include "cuda/model/device_weights.h"
#include "cuda/model/gpu_train_bcm.h"
#include "cuda/model/gpu_train_dac.h"
#include "cuda/model/gpu_train_llm.h"
#include "cuda/model/gpu_train_loss.h"
#include "cuda/model/gpu_train_params.h"
#include "cuda/model/gpu_vision_tower.h"
#include "model/bcm.h"
#include "model/dac.h"
#include "model/llm_train.h"
#include "model/weights.h"
#include "train/batch.h"
#include "train/param_store.h"
#include "train/trainer.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

class GpuTrainer {
 public:
  // As vr::Trainer: LLM weights from the checkpoint, the BCM loaded when present, else initialised with tc.seed
  // (the same values as the CPU's). Stage 2: the BCM teacher must be in the checkpoint (frozen), the DAC student is
  // loaded when present, else initialised with tc.seed + 1, as the CPU.
  // stream_chunk: values per streamed chunk of the host placement's optimizer step (0: the default; tests make it
  // smaller than a tensor).
  GpuTrainer(const ModelConfig& cfg, const std::vector<TensorRecord>& tensors, const TrainerConfig& tc,
             OptimizerPlacement where = OptimizerPlacement::Gpu, Stream s = nullptr, int64_t stream_chunk = 0);
  GpuTrainer(const GpuTrainer&) = delete;
  GpuTrainer& operator=(const GpuTrainer&) = delete;

  // capture (optional): the first boxes' teacher (and stage-2 student) maps, as the CPU Trainer's (trainer.h); without
  // it nothing extra is kept or downloaded.
  StepLosses forward_backward(const TrainBatch& batch, double grad_scale, AttentionCapture* capture = nullptr);
  // Clips (max_grad_norm > 0), applies AdamW with this lr, zeroes the gradients. Returns the norm before clipping.
  double optimizer_step(double lr, double max_grad_norm);
  int64_t step() const { return step_; }
  void set_step(int64_t s) { step_ = s; }

  // Device weights -> params() (gpu placement; under host the host holds the masters already), for reading them
  // (the addon's getTensor, the checkpoint writer).
  void download() { gp_->download(); }
  // params()' weights changed from outside: upload them all (one tensor: device_params().write_state).
  void weights_changed() { gp_->upload(); }
  // The trainer state of train/state_io (the CPU Trainer's format and tensor names: weights, moments, step, stage;
  // a resume across backends should work but is not tested), streamed per tensor (see above).
  void save_state(const std::string& path);
  void load_state(const std::vector<TensorRecord>& records, int64_t step);
  ParamStore& params() { return ps_; }
  GpuTrainParams& device_params() { return *gp_; }
  GpuTrainLLM& llm() { return *llm_; }  // tests: chunk sizes
  GpuFusedCrossEntropy& cross_entropy() { return ce_; }
  const ModelConfig& model_config() const { return cfg_; }
  const TrainerConfig& config() const { return tc_; }
  // Device bytes of the frozen vision tower's weights (the vision-only DeviceWeights).
  size_t frozen_weight_bytes() const { return frozen_->bytes(); }

 private:
  ModelConfig cfg_;
  TrainerConfig tc_;
  Stream s_;
  std::unique_ptr<WeightStore> ws_;
  ParamStore ps_;
  std::unique_ptr<TrainLLM> cpu_llm_;         // registers the decoder's tensors (names, shapes) and loads them
  std::unique_ptr<BoxCompression> cpu_bcm_;   // registers the BCM's tensors
  std::unique_ptr<DynamicCompression> cpu_dac_;  // stage 2: registers the DAC's tensors
  std::unique_ptr<DeviceWeights> frozen_;     // the vision tower's bf16 weights
  std::unique_ptr<GpuVisionTower> vision_;
  std::unique_ptr<GpuTrainParams> gp_;
  std::unique_ptr<GpuTrainLLM> llm_;
  std::unique_ptr<GpuBoxCompression> bcm_;
  std::unique_ptr<GpuDynamicCompression> dac_;  // stage 2
  GpuFusedCrossEntropy ce_;
  DeviceArena step_arena_;  // one micro-batch's activations and index tables, re-made per call
  int64_t step_ = 0;
};

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
