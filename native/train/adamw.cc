#include "train/adamw.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/parallel.h"
#include "cpu/simd.h"

namespace vr {

namespace {

// Sum of squares of g[0..n) in fp64 over fixed 64 Ki-element blocks with 8 interleaved accumulators per block,
// the blocks summed in order: the result depends only on n and the values, not on the thread count (resume ==
// uninterrupted relies on it), and the 8 accumulators break the add-latency chain that made one accumulator
// run at a fraction of the memory bandwidth.
VR_CLONES double sum_squares(const float* g, int64_t n) {
  const int64_t block = 1 << 16, nb = (n + block - 1) / block;
  std::vector<double> part(size_t(nb), 0.0);
#pragma omp parallel for schedule(static) if (nb > 1)
  for (int64_t b = 0; b < nb; b++) {
    const int64_t i0 = b * block, i1 = std::min(n, i0 + block);
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = i0;
    for (; i + 8 <= i1; i += 8)
      for (int j = 0; j < 8; j++) acc[j] += double(g[i + j]) * double(g[i + j]);
    for (; i < i1; i++) acc[0] += double(g[i]) * double(g[i]);
    part[size_t(b)] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  }
  double total = 0;
  for (double s : part) total += s;
  return total;
}

// One sweep over a range: clip scale, moments, weights, the bf16 GEMM copy and the gradient reset, so each array
// crosses the memory bus once per step instead of once per pass. Branch-free per element (the variants are
// template arguments) so the loop vectorises.
// No FMA contraction: every element gets the same rounded operations whether the vector body or the scalar tail
// of a loop computes it, so an element's result does not depend on where a range starts or ends (the CUDA host
// placement updates chunks that cut tensors anywhere, and OpenMP cuts each range per thread) - bit-identical to
// the whole-tensor sweep. (With contraction, 8 of 777 values differed in the last ulp.)
#if defined(__clang__)
#define VR_NO_CONTRACT
#else
#define VR_NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#endif
template <bool kW16, bool kZero>
VR_CLONES VR_NO_CONTRACT void adamw_sweep(const AdamWStep& k, float dfac, float* __restrict w, float* __restrict g,
                           float* __restrict m, float* __restrict v, uint16_t* __restrict w16, int64_t n) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
#pragma omp parallel for schedule(static) if (n > (1 << 14))
  for (int64_t i = 0; i < n; i++) {
    const float gi = g[i] * k.grad_scale;  // grad_scale == 1: exact
    const float mi = m[i] + k.a1 * (gi - m[i]);
    const float vi = v[i] * k.b2 + k.a2 * gi * gi;
    const float denom = std::sqrt(vi) / k.bc2_sqrt + k.eps;
    const float wi = w[i] * dfac - k.step_size * mi / denom;
    m[i] = mi;
    v[i] = vi;
    w[i] = wi;
    if (kW16) w16[i] = f32_to_bf16(wi);
    if (kZero) g[i] = 0.f;
  }
}

void require_grads(const Param& p, const char* what) {
  VR_CHECK(p.g, what, ": ", p.name, " has no host gradient (this parameter store keeps its gradients elsewhere)");
}

}  // namespace

AdamWStep adamw_step_scalars(const AdamWConfig& cfg, double lr, int64_t step, float grad_scale) {
  VR_CHECK(step >= 1, "AdamW: step count must start at 1");
  VR_CHECK(std::isfinite(lr) && lr >= 0, "AdamW: learning rate must be a finite non-negative number, got ", lr);
  const double bc1 = 1.0 - std::pow(cfg.beta1, double(step));
  const double bc2 = 1.0 - std::pow(cfg.beta2, double(step));
  AdamWStep k;
  k.step_size = float(lr / bc1);
  k.bc2_sqrt = float(std::sqrt(bc2));
  k.decay = cfg.weight_decay != 0 ? float(1.0 - lr * cfg.weight_decay) : 1.f;
  k.a1 = float(1.0 - cfg.beta1);
  k.b2 = float(cfg.beta2);
  k.a2 = float(1.0 - cfg.beta2);
  k.eps = float(cfg.eps);
  k.grad_scale = grad_scale;
  return k;
}

void adamw_range(const AdamWStep& k, bool decay, float* w, float* g, float* m, float* v, uint16_t* w16, int64_t n,
                 bool zero_g) {
  // x * 1.0f == x exactly, so one multiply serves decayed and undecayed tensors alike.
  const float dfac = decay ? k.decay : 1.f;
  if (w16 && zero_g) adamw_sweep<true, true>(k, dfac, w, g, m, v, w16, n);
  else if (w16) adamw_sweep<true, false>(k, dfac, w, g, m, v, w16, n);
  else if (zero_g) adamw_sweep<false, true>(k, dfac, w, g, m, v, nullptr, n);
  else adamw_sweep<false, false>(k, dfac, w, g, m, v, nullptr, n);
}

double grad_global_norm(const ParamStore& ps) {
  double total = 0;
  apply_num_threads();
  for (auto& p : ps.all())
    if (p->trainable) {
      require_grads(*p, "gradient norm");
      total += sum_squares(p->g, p->numel);
    }
  return std::sqrt(total);
}

float clip_coefficient(double norm, double max_norm) {
  if (max_norm <= 0) return 1.f;
  const double coef = max_norm / (norm + 1e-6);
  return coef < 1.0 ? float(coef) : 1.f;
}

double clip_grad_norm(ParamStore& ps, double max_norm) {
  const double norm = grad_global_norm(ps);
  const float c = clip_coefficient(norm, max_norm);
  if (c != 1.f) {
    for (auto& p : ps.all()) {
      if (!p->trainable) continue;
      require_grads(*p, "gradient clipping");
      float* g = p->g;
      const int64_t n = p->numel;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
      for (int64_t i = 0; i < n; i++) g[i] *= c;
    }
  }
  return norm;
}

void adamw_update(ParamStore& ps, const AdamWConfig& cfg, double lr, int64_t step, float grad_scale, bool zero_grads) {
  const AdamWStep k = adamw_step_scalars(cfg, lr, step, grad_scale);
  apply_num_threads();
  for (auto& p : ps.all()) {
    if (!p->trainable) continue;
    require_grads(*p, "AdamW");
    VR_CHECK(p->m && p->v, "AdamW: ", p->name, " has no host moments (this parameter store keeps them elsewhere)");
    adamw_range(k, p->decay, p->w, p->g, p->m, p->v, p->w16, p->numel, zero_grads);
    if (zero_grads) p->grad_zero = true;
  }
}

}  // namespace vr
