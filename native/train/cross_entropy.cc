#include "train/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/parallel.h"

namespace vr {

int64_t FusedCrossEntropy::chunk_rows(int64_t V) const {
  const int64_t budget = int64_t(1) << 25;  // floats of logits per chunk (128 MiB)
  return std::max<int64_t>(1, std::min<int64_t>(max_chunk_, budget / std::max<int64_t>(1, V)));
}

double FusedCrossEntropy::value(const float* hidden, const int32_t* targets, int64_t T, int64_t D,
                                const Linear& lm_head) {
  const int64_t V = lm_head.N;
  VR_CHECK(lm_head.K == D, "cross-entropy: lm_head input size ", lm_head.K, " != hidden size ", D);
  D_ = D;
  select_target_rows(targets, T, V, rows_, tgt_);
  const int64_t n = count(), C = chunk_rows(V);
  lse_.assign(size_t(n), 0.f);
  std::vector<float> h(size_t(std::min(n, C) * D)), logits(size_t(std::min(n, C) * V));
  double total = 0;
  for (int64_t r0 = 0; r0 < n; r0 += C) {
    const int64_t m = std::min(C, n - r0);
    for (int64_t i = 0; i < m; i++) std::memcpy(&h[size_t(i * D)], hidden + rows_[size_t(r0 + i)] * D, D * 4);
    linear_forward(logits.data(), h.data(), lm_head, m);
    apply_num_threads();
    // Per-row terms, summed serially below: an OpenMP reduction combines partial sums in arrival order, which
    // made the logged loss differ in the last bit between runs (and broke resume == uninterrupted).
    std::vector<double> term(size_t(m), 0.0);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < m; i++) {
      const float* z = &logits[size_t(i * V)];
      float mx = -INFINITY;
      for (int64_t j = 0; j < V; j++) mx = std::max(mx, z[j]);
      double s = 0;
      for (int64_t j = 0; j < V; j++) s += std::exp(double(z[j] - mx));
      const double lse = double(mx) + std::log(s);
      lse_[size_t(r0 + i)] = float(lse);
      term[size_t(i)] = lse - double(z[tgt_[size_t(r0 + i)]]);
    }
    for (int64_t i = 0; i < m; i++) total += term[size_t(i)];
  }
  return total;
}

void FusedCrossEntropy::backward(const float* hidden, float scale, const Linear& lm_head, float* dW,
                                 float* dhidden) const {
  const int64_t n = count(), V = lm_head.N, D = D_;
  if (n == 0 || scale == 0.f) return;
  const int64_t C = chunk_rows(V);
  std::vector<float> h(size_t(std::min(n, C) * D)), dh(h.size()), p(size_t(std::min(n, C) * V));
  for (int64_t r0 = 0; r0 < n; r0 += C) {
    const int64_t m = std::min(C, n - r0);
    for (int64_t i = 0; i < m; i++) std::memcpy(&h[size_t(i * D)], hidden + rows_[size_t(r0 + i)] * D, D * 4);
    linear_forward(p.data(), h.data(), lm_head, m);
    apply_num_threads();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < m; i++) {
      float* z = &p[size_t(i * V)];
      const float lse = lse_[size_t(r0 + i)];
      for (int64_t j = 0; j < V; j++) z[j] = std::exp(z[j] - lse) * scale;
      z[tgt_[size_t(r0 + i)]] -= scale;
    }
    std::fill(dh.begin(), dh.begin() + m * D, 0.f);
    linear_backward(dh.data(), dW, nullptr, p.data(), h.data(), lm_head, m);
    for (int64_t i = 0; i < m; i++) {
      float* dst = dhidden + rows_[size_t(r0 + i)] * D;
      const float* src = &dh[size_t(i * D)];
      for (int64_t c = 0; c < D; c++) dst[c] += src[c];
    }
  }
}

}  // namespace vr
