// Named training parameters: fp32 master weights, their gradients and AdamW moments, each kind in one arena.
// Frozen tensors (the stage-2 BCM teacher) live here too but get no gradient or optimizer state.
// With bf16 compute, GEMM weights also get a bf16 shadow copy that the optimizer refreshes after each update.
// Which host arrays exist is the allocation's choice (HostStorage): the CPU Trainer keeps all of them; the CUDA
// trainer keeps only what its optimizer placement needs on the host (cuda/model/gpu_train_params.h), and a Param
// whose array was not allocated has a null pointer there (every reader checks and fails in one line).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "ops/linear.h"

namespace vr {

struct Param {
  std::string name;              // checkpoint name (upstream's spelling)
  std::vector<int64_t> shape;
  int64_t numel = 0;
  bool trainable = true;
  bool decay = false;            // AdamW weight decay: trainable tensors with >= 2 dimensions (issue #5)
  bool gemm = false;             // used as a GEMM weight (gets a bf16 shadow under bf16 compute)
  float* w = nullptr;            // master weights
  float* g = nullptr;            // gradient (null when frozen)
  float* m = nullptr;            // AdamW exp_avg (null when frozen)
  float* v = nullptr;            // AdamW exp_avg_sq (null when frozen)
  uint16_t* w16 = nullptr;       // bf16 shadow (bf16 compute only)
  // g is known to hold zeros (set by zero_grad / the optimizer sweep, cleared by the first writer that checks it
  // and by ParamStore::mark_grads_written): that writer may overwrite the gradient instead of adding to it.
  bool grad_zero = true;
};

// The host arrays allocate() makes. Weights always exist (the checkpoint is loaded into them).
struct HostStorage {
  bool grads = true;    // fp32 gradients of the trainable tensors
  bool moments = true;  // AdamW exp_avg and exp_avg_sq of the trainable tensors
};

class ParamStore {
 public:
  explicit ParamStore(DType compute = DType::F32);
  DType compute() const { return compute_; }

  // Declares a tensor; pointers are assigned by allocate(). Returns a handle that stays valid.
  Param* add(const std::string& name, std::vector<int64_t> shape, bool trainable, bool gemm);
  // Allocates the arenas `what` asks for (zeroed). No add() afterwards.
  void allocate(HostStorage what = {});
  bool allocated() const { return allocated_; }
  const HostStorage& storage() const { return storage_; }

  Param* find(const std::string& name) const;
  Param& get(const std::string& name) const;  // throws naming the tensor when unknown
  const std::vector<std::unique_ptr<Param>>& all() const { return params_; }

  // A Linear over a GEMM weight [N, K] (and an optional bias) in the compute precision.
  Linear linear(const Param& w, const Param* bias) const;
  // Re-derives the bf16 shadows from the master weights (after load / optimizer step). No-op under fp32.
  void refresh_shadows();
  void zero_grad();
  // Forgets every grad_zero mark (after a backward pass: some gradients were written without consulting it).
  void mark_grads_written();
  int64_t trainable_numel() const;
  // Bytes of the host arrays allocated (weights, gradients, moments, bf16 shadows: what exists, not what could).
  uint64_t bytes() const;

 private:
  DType compute_;
  bool allocated_ = false;
  HostStorage storage_;
  int64_t trainable_numel_ = 0;
  std::vector<std::unique_ptr<Param>> params_;
  std::vector<float> w_, g_, m_, v_;
  std::vector<uint16_t> w16_;
};

}  // namespace vr
