// Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_) and AdamW (torch.optim.AdamW, single-tensor
// path) over the trainable tensors of a ParamStore: fp32 master weights and fp32 moments.
#pragma once
#include <cstdint>

#include "train/param_store.h"

namespace vr {

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.1;
};

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
void adamw_update(ParamStore& ps, const AdamWConfig& cfg, double lr, int64_t step, float grad_scale = 1.f,
                  bool zero_grads = false);

}  // namespace vr
