// Training parameters on the CUDA backend: the device twin of train/param_store.h. Every tensor of a CPU
// ParamStore (same names, same order of declaration) gets device storage:
//   - an fp32 gradient, a slice of ONE contiguous buffer over all trainable tensors (a data-parallel all-reduce
//     is one call over grads(), between the last micro-step and the optimizer step);
//   - a bf16 shadow for GEMM weights (the operand of every GEMM), refreshed after each optimizer step;
//   - fp32 weights: under the `gpu` placement the master weights themselves (+ AdamW moments on the device);
//     under `host` a device copy only for the tensors the kernels read in fp32 (norm weights, biases, the token
//     embedding) - the fp32 master and the moments stay in the CPU ParamStore (src/plan/gpu_memory.ts).
// Checkpoints keep using the CPU writer: download() brings the device state back into the ParamStore.
//
// Optimizer placement (`--optimizer-states`, src/plan/gpu_memory.ts `optimizerStates`):
//   gpu      the adamw_step kernel over each tensor (torch maths in fp32: equal to the CPU AdamW up to fp32
//            rounding of the scalars);
//   host     gradients downloaded into the ParamStore, the CPU's vr::adamw_update (bit-identical to the CPU
//            trainer by construction), the updated weights uploaded (bf16 shadows, fp32 copies);
//   gpu-8bit not implemented (one-line error).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/kernels/cuda_kernels.h"
#include "cuda/model/device_arena.h"
#include "train/adamw.h"
#include "train/param_store.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

enum class OptimizerPlacement { Gpu, Host, Gpu8bit };
// "gpu" | "host" | "gpu-8bit" (the plan's names); vr::Error naming the value otherwise.
OptimizerPlacement optimizer_placement_from_name(const std::string& name);
const char* optimizer_placement_name(OptimizerPlacement p);

// How a model wants its tensors laid out on the device (GpuTrainLLM::param_layout).
struct GpuParamLayout {
  // Each group's tensors back to back in this order, in every storage (fp32, gradient, bf16 shadow), so a fused
  // GEMM reads them as one matrix: q|k|v weights as one [Dq + 2 Dkv, D] weight, their biases as one vector.
  std::vector<std::vector<std::string>> fused;
  // Tensors that need fp32 device values even under the host placement (besides the non-GEMM ones).
  std::vector<std::string> f32_on_device;
};

struct DeviceParam {
  const Param* host = nullptr;  // the CPU twin: name, shape, trainable, decay, gemm
  float* w = nullptr;           // fp32 weights (gpu: the master; host: a copy; null for host-placed GEMM weights)
  float* g = nullptr;           // fp32 gradient, inside grads() (null when frozen)
  float* m = nullptr;           // AdamW moments (gpu placement, trainable only)
  float* v = nullptr;
  bf16* w16 = nullptr;          // bf16 shadow (GEMM weights only)
};

class GpuTrainParams {
 public:
  // ps must be allocated. Allocates the device storage (gradients zeroed); upload() fills it.
  GpuTrainParams(ParamStore& ps, OptimizerPlacement where, const GpuParamLayout& layout = {}, Stream s = nullptr);
  GpuTrainParams(const GpuTrainParams&) = delete;
  GpuTrainParams& operator=(const GpuTrainParams&) = delete;

  OptimizerPlacement placement() const { return where_; }
  ParamStore& host_store() const { return ps_; }
  const DeviceParam* find(const std::string& name) const;
  const DeviceParam& get(const std::string& name) const;  // vr::Error naming the tensor when unknown
  const std::vector<DeviceParam>& all() const { return params_; }

  // ParamStore -> device: weights (fp32 where kept, bf16 shadows rounded from the fp32 master as
  // ParamStore::refresh_shadows does) and, under gpu, the AdamW moments (a resumed run). Gradients untouched.
  // trainable_only skips the frozen tensors (the host placement's step: they did not change).
  void upload(bool trainable_only = false);
  // Device -> ParamStore (gpu placement: master weights and moments; host: nothing, the host is the master), so
  // a checkpoint is written by the CPU writer.
  void download();
  // Device gradients -> the ParamStore's g (tests; the host placement's optimizer step does it itself).
  void download_grads();

  // The one gradient buffer over every trainable tensor, in layout order (an all-reduce's operand).
  float* grads() const { return grads_; }
  int64_t grad_numel() const { return grad_numel_; }
  void zero_grad();
  // L2 norm of all gradients (clip_grad_norm_'s norm). gpu: fp64 partial sums in a fixed order on the device
  // (deterministic; equal to the CPU's up to fp64 rounding); host: the CPU's grad_global_norm over the downloaded
  // gradients (identical), which the following step() then reuses.
  double grad_norm();
  // One AdamW step (train/adamw.h semantics: decay only on the tensors the CPU decays, g read as
  // grad_scale * g), shadows refreshed, gradients zeroed afterwards.
  void step(const vr::AdamWConfig& cfg, double lr, int64_t step, float grad_scale = 1.f);

 private:
  ParamStore& ps_;
  OptimizerPlacement where_;
  Stream s_;
  std::vector<DeviceParam> params_;
  DeviceArena arena_;
  float* grads_ = nullptr;
  int64_t grad_numel_ = 0;
  double* norm_partials_ = nullptr;  // kSumSquaresBlocks fp64 partial sums of the gradient norm
  bool grads_on_host_ = false;  // host placement: ps_ holds the current gradients (grad_norm downloaded them)
};

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
