// Training parameters on the CUDA backend: the device twin of train/param_store.h. Every tensor of a CPU
// ParamStore (same names, same order of declaration) gets device storage:
//   - an fp32 gradient, a slice of ONE contiguous buffer over all trainable tensors (a data-parallel all-reduce
//     is one call over grads(), between the last micro-step and the optimizer step);
//   - a bf16 shadow for GEMM weights (the operand of every GEMM), refreshed after each optimizer step;
//   - fp32 weights: under the `gpu` placement the master weights themselves (+ AdamW moments on the device);
//     under `host` a device copy only for the tensors the kernels read in fp32 (norm weights, biases, the BCM
//     queries, the token embedding) - the fp32 master and the moments stay in the CPU ParamStore.
// src/plan/gpu_memory.ts lists exactly these storages (device_bytes() / staging_bytes() / ParamStore::bytes() are
// checked against its items by test/golden_train/train_memory_plan.test.ts).
//
// Host memory per placement (host_storage(): what the ParamStore allocates):
//   gpu   the fp32 weights only (4 B/param): the checkpoint is loaded into them and uploaded, download() refreshes
//         them from the device for getTensor / the checkpoint writer; moments and gradients stay on the device
//         and are read per tensor (read_state / read_grad) when a state file is saved or a gradient is asked for,
//         and written per tensor when a state is loaded (write_state). No pinned memory.
//   host  fp32 master weights + AdamW moments (12 B/param; no host gradient array) and two pinned staging slots
//         of chunk_elems() values each (4 B gradient / new fp32 value + 2 B new bf16 value per element).
//
// Optimizer placement (`--optimizer-states`, src/plan/gpu_memory.ts `optimizerStates`):
//   gpu   the adamw_step kernel over each tensor (torch maths in fp32: equal to the CPU AdamW up to fp32
//         rounding of the scalars);
//   host  the gradients stream to the host in chunks of chunk_elems() values (tensors may straddle chunks):
//         device -> pinned slot (async, on a copy stream), the CPU AdamW's own per-range update (train/adamw.h
//         adamw_range: the CPU Trainer's code, so bit-identical to it given the same gradients and clip factor)
//         on the host masters and moments, the new bf16 shadows (and the fp32 device copies) written into the
//         slot and uploaded from it. Two slots: the update of chunk i overlaps the download of chunk i+1 and the
//         upload of chunk i-1. Gradients cross PCIe once per optimizer step.
// The gradient norm (clip_grad_norm_'s) is computed on the device under both placements: fp64 partial sums in a
// fixed order (deterministic; equal to the CPU's grad_global_norm up to fp64 rounding).
// gpu-8bit (8-bit moments on the device) was considered and not built (docs/architecture.md, "GPU memory plan").
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda/kernels/cuda_kernels.h"
#include "cuda/model/device_arena.h"
#include "cuda/model/pinned_buffer.h"
#include "train/adamw.h"
#include "train/param_store.h"
#include "train/state_io.h"

struct CUevent_st;  // cudaEvent_t is CUevent_st*

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

enum class OptimizerPlacement { Gpu, Host };
// "gpu" | "host" (the plan's names); vr::Error naming the value otherwise.
OptimizerPlacement optimizer_placement_from_name(const std::string& name);
const char* optimizer_placement_name(OptimizerPlacement p);
// The host arrays a placement needs (see the top of this file): gpu weights only, host weights + moments.
HostStorage host_storage(OptimizerPlacement p);

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
  // Values per streamed chunk of the host placement's optimizer step: 32 Mi (128 MiB of fp32 gradients).
  static constexpr int64_t kDefaultChunkElems = int64_t(1) << 25;
  // ps must be allocated with at least host_storage(where). Allocates the device storage (gradients and device
  // moments zeroed) and, under host, the pinned staging: two slots of chunk_elems() = min(chunk_elems, trainable
  // values) x (4 + 2) B, each half 64-byte aligned. upload() fills the device.
  GpuTrainParams(ParamStore& ps, OptimizerPlacement where, const GpuParamLayout& layout = {}, Stream s = nullptr,
                 int64_t chunk_elems = kDefaultChunkElems);
  GpuTrainParams(const GpuTrainParams&) = delete;
  GpuTrainParams& operator=(const GpuTrainParams&) = delete;
  ~GpuTrainParams();

  OptimizerPlacement placement() const { return where_; }
  ParamStore& host_store() const { return ps_; }
  const DeviceParam* find(const std::string& name) const;
  const DeviceParam& get(const std::string& name) const;  // vr::Error naming the tensor when unknown
  const DeviceParam& of(const Param& p) const;             // the device twin of one of host_store()'s tensors
  const std::vector<DeviceParam>& all() const { return params_; }

  // ParamStore -> device: weights (fp32 where kept, bf16 shadows rounded from the fp32 master as
  // ParamStore::refresh_shadows does) and, under gpu, the AdamW moments where the store has host moments (a
  // store allocated with them; the trainer's has none and loads moments with write_state). Gradients untouched.
  void upload();
  // Device -> ParamStore: gpu placement: the fp32 weights (and the moments where the store has host moments);
  // host: nothing (the host is the master).
  void download();

  // Per-tensor access for the trainer state (train/state_io's StateSource / StateSink) and the addon:
  // read_state copies values [offset, offset + n) of a field from wherever it lives (host master or device);
  // write_state sets a whole field there, refreshing the device copies (fp32, bf16 shadow) of written weights.
  void read_state(const Param& p, StateField f, int64_t offset, int64_t n, float* dst) const;
  void write_state(const Param& p, StateField f, const float* src);
  // The device gradient of one trainable tensor (vr::Error for a frozen one).
  void read_grad(const Param& p, float* dst) const;
  // Every device gradient into the ParamStore's host gradients (tests over a store allocated with them; a
  // one-line error otherwise).
  void download_grads();

  // The one gradient buffer over every trainable tensor, in layout order (an all-reduce's operand).
  float* grads() const { return grads_; }
  int64_t grad_numel() const { return grad_numel_; }
  void zero_grad();
  // L2 norm of all gradients (clip_grad_norm_'s norm): fp64 partial sums in a fixed order on the device.
  double grad_norm();
  // One AdamW step (train/adamw.h semantics: decay only on the tensors the CPU decays, g read as
  // grad_scale * g), shadows refreshed, gradients zeroed afterwards.
  void step(const vr::AdamWConfig& cfg, double lr, int64_t step, float grad_scale = 1.f);

  // What this object allocated: the device parameter arena (every storage above + the norm's partial sums, with
  // alignment padding) and the pinned staging (host placement; 0 under gpu).
  size_t device_bytes() const { return arena_.capacity(); }
  size_t staging_bytes() const { return staging_.bytes(); }
  bool staging_pinned() const { return staging_.pinned(); }
  int64_t chunk_elems() const { return chunk_; }

 private:
  // One piece of a streamed chunk: values [offset, offset + n) of trainable tensor `param` at `slot_off` of the slot.
  struct Piece {
    size_t param;
    int64_t offset, n, slot_off;
  };
  void host_step(const AdamWStep& k);
  void download_chunk(size_t c);
  // A slot: the fp32 half (gradients in, new fp32 values out) then the bf16 half, each 64-byte aligned.
  static size_t align64(size_t b) { return (b + 63) / 64 * 64; }
  size_t slot_bytes() const { return align64(size_t(chunk_) * 4) + align64(size_t(chunk_) * 2); }
  float* slot_f32(size_t slot) const { return staging_.as<float>(slot * slot_bytes()); }
  uint16_t* slot_bf16(size_t slot) const {
    return staging_.as<uint16_t>(slot * slot_bytes() + align64(size_t(chunk_) * 4));
  }

  ParamStore& ps_;
  OptimizerPlacement where_;
  Stream s_;
  std::vector<DeviceParam> params_;
  std::unordered_map<const Param*, size_t> index_;
  DeviceArena arena_;
  float* grads_ = nullptr;
  int64_t grad_numel_ = 0;
  double* norm_partials_ = nullptr;  // kSumSquaresBlocks fp64 partial sums of the gradient norm
  // Host placement's streaming: chunk size, the chunks' pieces (chunk c = pieces [chunk_first_[c], [c + 1])),
  // two staging slots of chunk_ x (4 + 2) bytes, the copy stream and its events.
  int64_t chunk_ = 0;
  std::vector<Piece> pieces_;
  std::vector<size_t> chunk_first_;
  PinnedBuffer staging_;
  Stream copy_ = nullptr;
  CUevent_st* grads_ready_ = nullptr;  // recorded on s_ before the step: the gradients are complete
  CUevent_st* downloaded_[2] = {nullptr, nullptr};
  CUevent_st* uploaded_ = nullptr;     // recorded on copy_ after the last upload: s_ waits on it
};

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
