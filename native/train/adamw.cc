#include "train/adamw.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"

namespace vr {

double grad_global_norm(const ParamStore& ps) {
  double total = 0;
  apply_num_threads();
  for (auto& p : ps.all()) {
    if (!p->trainable) continue;
    const float* g = p->g;
    const int64_t n = p->numel;
    // Fixed-size blocks summed in a fixed order: the norm (and so the clipping) is bit-identical from run to run
    // whatever the thread count, which resume == uninterrupted relies on.
    const int64_t block = 1 << 16, nb = (n + block - 1) / block;
    std::vector<double> part(size_t(nb), 0.0);
#pragma omp parallel for schedule(static) if (nb > 1)
    for (int64_t b = 0; b < nb; b++) {
      double s = 0;
      for (int64_t i = b * block; i < std::min(n, (b + 1) * block); i++) s += double(g[i]) * double(g[i]);
      part[size_t(b)] = s;
    }
    for (double s : part) total += s;
  }
  return std::sqrt(total);
}

double clip_grad_norm(ParamStore& ps, double max_norm) {
  const double norm = grad_global_norm(ps);
  if (max_norm > 0) {
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) {
      const float c = float(coef);
      for (auto& p : ps.all()) {
        if (!p->trainable) continue;
        float* g = p->g;
        const int64_t n = p->numel;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
        for (int64_t i = 0; i < n; i++) g[i] *= c;
      }
    }
  }
  return norm;
}

void adamw_update(ParamStore& ps, const AdamWConfig& cfg, double lr, int64_t step) {
  VR_CHECK(step >= 1, "AdamW: step count must start at 1");
  VR_CHECK(std::isfinite(lr) && lr >= 0, "AdamW: learning rate must be a finite non-negative number, got ", lr);
  const double bc1 = 1.0 - std::pow(cfg.beta1, double(step));
  const double bc2 = 1.0 - std::pow(cfg.beta2, double(step));
  const float step_size = float(lr / bc1), bc2_sqrt = float(std::sqrt(bc2));
  const float decay = float(1.0 - lr * cfg.weight_decay);
  const float a1 = float(1.0 - cfg.beta1), b2 = float(cfg.beta2), a2 = float(1.0 - cfg.beta2), eps = float(cfg.eps);
  apply_num_threads();
  for (auto& p : ps.all()) {
    if (!p->trainable) continue;
    float *w = p->w, *g = p->g, *m = p->m, *v = p->v;
    const bool dec = p->decay && cfg.weight_decay != 0;
    const int64_t n = p->numel;
#pragma omp parallel for schedule(static) if (n > (1 << 14))
    for (int64_t i = 0; i < n; i++) {
      if (dec) w[i] *= decay;
      m[i] += a1 * (g[i] - m[i]);
      v[i] = v[i] * b2 + a2 * g[i] * g[i];
      const float denom = std::sqrt(v[i]) / bc2_sqrt + eps;
      w[i] -= step_size * m[i] / denom;
    }
  }
  ps.refresh_shadows();
}

}  // namespace vr
