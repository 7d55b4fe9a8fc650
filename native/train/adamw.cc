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

struct AdamWSweep {
  float step_size, bc2_sqrt, dfac, a1, b2, a2, eps, grad_scale;
};

// One sweep over a tensor: clip scale, moments, weights, the bf16 GEMM copy and the gradient reset, so each array
// crosses the memory bus once per step instead of once per pass. Branch-free per element (the variants are
// template arguments) so the loop vectorises.
template <bool kW16, bool kZero>
VR_CLONES void adamw_sweep(const AdamWSweep& k, float* __restrict w, float* __restrict g, float* __restrict m,
                 float* __restrict v, uint16_t* __restrict w16, int64_t n) {
#pragma omp parallel for schedule(static) if (n > (1 << 14))
  for (int64_t i = 0; i < n; i++) {
    const float gi = g[i] * k.grad_scale;  // grad_scale == 1: exact
    const float mi = m[i] + k.a1 * (gi - m[i]);
    const float vi = v[i] * k.b2 + k.a2 * gi * gi;
    const float denom = std::sqrt(vi) / k.bc2_sqrt + k.eps;
    const float wi = w[i] * k.dfac - k.step_size * mi / denom;
    m[i] = mi;
    v[i] = vi;
    w[i] = wi;
    if (kW16) w16[i] = f32_to_bf16(wi);
    if (kZero) g[i] = 0.f;
  }
}

}  // namespace

double grad_global_norm(const ParamStore& ps) {
  double total = 0;
  apply_num_threads();
  for (auto& p : ps.all())
    if (p->trainable) total += sum_squares(p->g, p->numel);
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
      float* g = p->g;
      const int64_t n = p->numel;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
      for (int64_t i = 0; i < n; i++) g[i] *= c;
    }
  }
  return norm;
}

void adamw_update(ParamStore& ps, const AdamWConfig& cfg, double lr, int64_t step, float grad_scale, bool zero_grads) {
  VR_CHECK(step >= 1, "AdamW: step count must start at 1");
  VR_CHECK(std::isfinite(lr) && lr >= 0, "AdamW: learning rate must be a finite non-negative number, got ", lr);
  const double bc1 = 1.0 - std::pow(cfg.beta1, double(step));
  const double bc2 = 1.0 - std::pow(cfg.beta2, double(step));
  const float step_size = float(lr / bc1), bc2_sqrt = float(std::sqrt(bc2));
  const float decay = float(1.0 - lr * cfg.weight_decay);
  const float a1 = float(1.0 - cfg.beta1), b2 = float(cfg.beta2), a2 = float(1.0 - cfg.beta2), eps = float(cfg.eps);
  AdamWSweep k{step_size, bc2_sqrt, 1.f, a1, b2, a2, eps, grad_scale};
  apply_num_threads();
  for (auto& p : ps.all()) {
    if (!p->trainable) continue;
    // x * 1.0f == x exactly, so one multiply serves decayed and undecayed tensors alike.
    k.dfac = (p->decay && cfg.weight_decay != 0) ? decay : 1.f;
    const int64_t n = p->numel;
    const bool w16 = p->w16 != nullptr;
    if (w16 && zero_grads) adamw_sweep<true, true>(k, p->w, p->g, p->m, p->v, p->w16, n);
    else if (w16) adamw_sweep<true, false>(k, p->w, p->g, p->m, p->v, p->w16, n);
    else if (zero_grads) adamw_sweep<false, true>(k, p->w, p->g, p->m, p->v, nullptr, n);
    else adamw_sweep<false, false>(k, p->w, p->g, p->m, p->v, nullptr, n);
    if (zero_grads) p->grad_zero = true;
  }
}

}  // namespace vr
