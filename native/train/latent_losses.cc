#include "train/latent_losses.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace vr {

namespace {
constexpr float kClamp = 1e4f;
constexpr double kKlEps = 1e-9;

inline float clampf(float x) { return std::min(kClamp, std::max(-kClamp, x)); }
inline bool inside(float x) { return x >= -kClamp && x <= kClamp; }

// The teacher map of box b scattered into student coordinates: T [nq, S_b] (assignment, as upstream's scatter).
std::vector<float> scattered_teacher(const AttnTransfer& t, int64_t b) {
  const int64_t S = (t.a_off[b + 1] - t.a_off[b]) / t.nq, N = (t.t_off[b + 1] - t.t_off[b]) / t.nq;
  VR_CHECK(t.cu_box[b + 1] - t.cu_box[b] == N, "attention transfer: box ", b, " has ", t.cu_box[b + 1] - t.cu_box[b],
           " token indices but its teacher map has ", N, " columns");
  std::vector<float> T(size_t(t.nq * S), 0.f);
  for (int64_t j = 0; j < N; j++) {
    const int32_t s = t.local_idx[t.cu_box[b] + j];
    VR_CHECK(s >= 0 && s < S, "attention transfer: box ", b, " token index ", s, " is outside its sample's ", S,
             " visual tokens");
    for (int q = 0; q < t.nq; q++) T[size_t(q * S + s)] = t.At[t.t_off[b] + q * N + j];
  }
  return T;
}
}  // namespace

bool all_finite(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (!std::isfinite(x[i])) return false;
  return true;
}

double align_value(const float* H, const float* Z, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) {
    const double d = double(clampf(H[i])) - double(clampf(Z[i]));
    s += d * d;
  }
  return n ? s / double(n) : 0.0;
}

void align_grad(const float* H, const float* Z, int64_t n, float w, float* dH, float* dZ) {
  if (n == 0 || w == 0.f) return;
  const float k = w / float(n);
  for (int64_t i = 0; i < n; i++) {
    const float d = clampf(H[i]) - clampf(Z[i]);
    if (dH && inside(H[i])) dH[i] += k * d;
    if (dZ && inside(Z[i])) dZ[i] -= k * d;
  }
}

double mse_value(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) {
    const double d = double(a[i]) - double(b[i]);
    s += d * d;
  }
  return n ? s / double(n) : 0.0;
}

void mse_grad(const float* a, const float* b, int64_t n, float w, float* da) {
  if (n == 0 || w == 0.f) return;
  const float k = 2.f * w / float(n);
  for (int64_t i = 0; i < n; i++) da[i] += k * (a[i] - b[i]);
}

double kl_value(const AttnTransfer& t) {
  if (t.nb == 0) return 0.0;
  double s = 0;
  for (int64_t b = 0; b < t.nb; b++) {
    const std::vector<float> T = scattered_teacher(t, b);
    const float* A = t.A + t.a_off[b];
    for (size_t e = 0; e < T.size(); e++)
      if (T[e] > 0.f) s += double(T[e]) * (std::log(double(T[e])) - std::log(double(A[e]) + kKlEps));
  }
  return s / double(t.nb);
}

void kl_grad(const AttnTransfer& t, float w, float* dA) {
  if (t.nb == 0 || w == 0.f) return;
  for (int64_t b = 0; b < t.nb; b++) {
    const std::vector<float> T = scattered_teacher(t, b);
    const float* A = t.A + t.a_off[b];
    float* g = dA + t.a_off[b];
    for (size_t e = 0; e < T.size(); e++)
      if (T[e] > 0.f) g[e] -= float(double(w) * double(T[e]) / (double(A[e]) + kKlEps) / double(t.nb));
  }
}

}  // namespace vr
