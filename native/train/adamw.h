// Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_) and AdamW (torch.optim.AdamW, single-tensor
// path) over the trainable tensors of a ParamStore: fp32 master weights and fp32 moments.
#pragma once
#include <cstdint>

#include "train/param_store.h"

namespace vr {

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.1;
};

// The per-step scalars of one AdamW update (fp32, derived from the doubles once per step) and the per-range update
// itself: the ONE implementation of the element maths, shared by the CPU Trainer (adamw_update, whole tensors) and
// the CUDA trainer's host placement (cuda/model/gpu_train_params: gradient chunks streamed through pinned staging),
// so both produce the same bits given the same gradients and clip factor.
struct AdamWStep {
  float step_size, bc2_sqrt, decay, a1, b2, a2, eps, grad_scale;
};
// VR_CHECKs step >= 1 and a finite lr >= 0.
AdamWStep adamw_step_scalars(const AdamWConfig& cfg, double lr, int64_t step, float grad_scale);
// n elements of one tensor: g read as g * grad_scale, moments and weights updated in place (decay applies when
// `decay`: the tensor's Param::decay), w16 (optional) receives the new weights rounded to bf16, and with zero_g
// the gradient is left zeroed.
void adamw_range(const AdamWStep& k, bool decay, float* w, float* g, float* m, float* v, uint16_t* w16, int64_t n,
                 bool zero_g);

// L2 norm of all trainable gradients together.
double grad_global_norm(const ParamStore& ps);
// clip_grad_norm_'s factor: min(1, max_norm / (norm + 1e-6)) when max_norm > 0, else 1.
float clip_coefficient(double norm, double max_norm);
// clip_grad_norm_: scales the gradients by clip_coefficient in place. Returns norm.
double clip_grad_norm(ParamStore& ps, double max_norm);

// One AdamW update with step count `step` (1 for the first update):
//   w *= 1 - lr*wd (decay tensors only);  m += (1-b1)(g - m);  v = b2 v + (1-b2) g^2;
//   w -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
// with g read as g * grad_scale (the clip factor: the same floats as clipping in place first). Refreshes the bf16
// GEMM copies of the updated tensors in the same sweep, and with zero_grads leaves the gradients zeroed.
// Needs the host gradients and moments (a one-line error on a store allocated without them).
void adamw_update(ParamStore& ps, const AdamWConfig& cfg, double lr, int64_t step, float grad_scale = 1.f,
                  bool zero_grads = false);

}  // namespace vr
