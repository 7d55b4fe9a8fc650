#include "train/head_init.h"

#include <cmath>

namespace vr {

uint64_t InitRng::next() {
  uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double InitRng::uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }

double InitRng::normal() {
  if (have_spare_) {
    have_spare_ = false;
    return spare_;
  }
  double u1 = uniform();
  while (u1 <= 0) u1 = uniform();
  const double u2 = uniform(), r = std::sqrt(-2.0 * std::log(u1)), a = 2.0 * M_PI * u2;
  spare_ = r * std::sin(a);
  have_spare_ = true;
  return r * std::cos(a);
}

void init_resampler(const ResamplerWeights& w, InitRng& rng) {
  const int64_t D = w.in_w->shape[1];
  const double bound = std::sqrt(6.0 / double(D + 3 * D));  // xavier_uniform: fan_in D, fan_out 3D
  for (int64_t i = 0; i < w.in_w->numel; i++) w.in_w->w[i] = float((2 * rng.uniform() - 1) * bound);
  for (int64_t i = 0; i < w.in_b->numel; i++) w.in_b->w[i] = 0.f;
  for (int64_t i = 0; i < w.out_w->numel; i++) w.out_w->w[i] = float(0.02 * rng.normal());
  for (int64_t i = 0; i < w.out_b->numel; i++) w.out_b->w[i] = 0.f;
  for (int64_t i = 0; i < w.ln_w->numel; i++) w.ln_w->w[i] = 1.f;
  for (int64_t i = 0; i < w.ln_b->numel; i++) w.ln_b->w[i] = 0.f;
}

void init_queries(Param& queries, InitRng& rng) {
  for (int64_t i = 0; i < queries.numel; i++) queries.w[i] = float(0.02 * rng.normal());
}

}  // namespace vr
