// The `train` measurement of vreflect_cuda_model_bench: GpuTrainer stage 1 (or 2: --stage 2) over the random checkpoint on one
// synthetic packed micro-batch laid out as src/bench/train_batch.ts lays it out (method.md §2.5): per sample
//   system   <|im_start|> 8 text <|im_end|> 1 text
//   user     <|im_start|> 2 text <|vision_start|> image pads <|vision_end|> question <|im_end|> 1 text
//            <|im_start|> 2 text
//   response <|lvr_start|> K x <|lvr|> <|lvr_end|> answer <|im_end|> 1 text      (labels on the response only)
// one box (normalised [0.25, 0.25, 0.75, 0.75]) on the sample's image, targets shifted within each sample, M-RoPE
// positions from model/rope_tables (restarting per sample); seeded text ids and pixels. Each step is grad_accum
// forward_backward calls on that micro-batch (grad scale 1/N) + one optimizer_step (lr 1e-5, clip 1.0), timed on
// the host clock after a device synchronize; MFU = N x train_model_flop (src/bench/train_flops.ts modelFlop,
// accumulatedStepCost) / step time / the GPU's dense bf16 datasheet peak (src/bench/gpu_peak.ts); mfu_forward_backward
// leaves the optimizer step out. --check-cpu also runs the CPU Trainer (fp32) on the same batch and
// checkpoint for the first micro-batch's losses (small shapes only: the CPU is slow). Stage 2 (method.md §9): the
// checkpoint gets a random BCM teacher beside it (write_bcm_head), the <|lvr|> targets are ignored as the data side
// does for stage 2, lambda_resampler is upstream's 1.0; its FLOPs are bench_shape.h's stage-2 count.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "cuda/bench/model/bench_checkpoint.h"
#include "cuda/bench/model/bench_memory.h"
#include "cuda/bench/model/bench_shape.h"
#include "train/batch.h"

namespace vr::bench {

struct TrainOptions {
  int64_t tokens = 1024;        // per micro-batch (all samples)
  int samples = 1;              // samples packed into it (tokens / samples each)
  int64_t image_tokens = 576;   // merged tokens of each sample's image (672x672 px, as `bench train`)
  int64_t answer_tokens = 128;
  int latent_count = 8;
  int steps = 3, warmup = 1;
  int grad_accum = 1;
  int stage = 1;                // 2: the BCM teacher from dir/bcm_head.safetensors (random), the DAC trained           // micro-batches (forward_backward with grad scale 1/N) per optimizer step
  std::string placement = "gpu";  // --optimizer-states gpu|host
  // --checkpointing on|off|auto: the decoder recomputes each layer (on) or keeps every layer's activations (off);
  // auto = the plan's auto (src/plan/gpu_memory.ts planTraining): off when the ported stage-1 plan without
  // recomputation fits the device's free memory, on when that memory is unknown (the emulator without
  // VREFLECT_CUDA_EMU_MEMORY) or for stage 2 (its plan is not ported).
  std::string checkpointing = "auto";
  bool check_cpu = false;
  std::string torch_batch_dir;  // when set: batch.json + pixels.f32 for scripts_bench/torch_train.py
  uint64_t seed = 7;
};

// The synthetic micro-batch (exposed for tests).
TrainBatch make_train_batch(const BenchShape& s, const TrainOptions& o);

// Writes batch.json + pixels.f32 in the format of src/bench/train_batch.ts torchBatchFile (samples of one length).
void write_torch_batch(const std::string& dir, const TrainBatch& b, int image_token_id);

// The dense bf16 datasheet peak in FLOP/s for a GPU name (src/bench/gpu_peak.ts), or -1 (emulator, unknown part);
// `source` names the part.
double gpu_bf16_peak(const std::string& device_name, std::string* source);

// The "train" object of the report (JSON).
std::string run_train(const BenchShape& s, const BenchCheckpoint& ck, const TrainOptions& o, MemoryPoll& mem,
                      const std::string& device_name, const std::function<void(const std::string&)>& log);

}  // namespace vr::bench
