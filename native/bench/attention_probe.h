// Attention throughput probe for `vreflect bench kernels` (CPU side): times the op layer's flash-style
// attention forward, or forward + backward, on one shape with random fp32 data. Self-attention (Lq = Lk = seq,
// GQA heads:kv_heads) or cross-attention (the BCM/DAC resampler: `queries` rows against `keys` rows per item).
// FLOP counts follow flash-attention's benchmark convention: forward 4 * Lq * Lk * D * H (halved when causal),
// backward 2.5x the forward. Header-only, like gemm_probe.h.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "bench/repeat_timer.h"
#include "core/error.h"
#include "ops/attention.h"

namespace vr::bench {

struct AttentionShape {
  int64_t lq = 0, lk = 0;  // rows per item
  int items = 1;           // independent items (segments)
  int heads = 0, kv_heads = 0, head_dim = 0;
  bool causal = false;
  bool backward = false;   // time the backward pass (the forward runs once untimed for out and lse)
};

struct AttentionResult {
  double best_ms = 0, median_ms = 0, flop = 0, gflops = 0;
  int repeats = 0;
};

inline double attention_flop(const AttentionShape& s) {
  const double fwd = 4.0 * double(s.lq) * double(s.lk) * s.head_dim * s.heads * s.items * (s.causal ? 0.5 : 1.0);
  return s.backward ? 2.5 * fwd : fwd;
}

inline AttentionResult measure_attention(const AttentionShape& s, double seconds, int min_repeats) {
  VR_CHECK(s.lq >= 1 && s.lk >= 1 && s.items >= 1 && s.heads >= 1 && s.kv_heads >= 1 && s.heads % s.kv_heads == 0 &&
               s.head_dim >= 1 && s.head_dim <= 512,
           "attention probe: need lq, lk, items, heads, kv_heads >= 1, heads a multiple of kv_heads, head_dim in [1, 512]");
  const int64_t tq = s.lq * s.items, tk = s.lk * s.items;
  const int64_t qrow = int64_t(s.heads) * s.head_dim, krow = int64_t(s.kv_heads) * s.head_dim;
  VR_CHECK(tq * qrow <= (int64_t(1) << 31) && tk * krow <= (int64_t(1) << 31), "attention probe: tensors above 2^31 elements");
  std::vector<float> q(size_t(tq * qrow)), k(size_t(tk * krow)), v(size_t(tk * krow)), out(size_t(tq * qrow)),
      lse(size_t(tq * s.heads));
  uint32_t st = 777;
  auto next = [&st] { st = st * 1664525u + 1013904223u; return float(int32_t(st >> 8) - (1 << 23)) / float(1 << 23); };
  for (auto* b : {&q, &k, &v})
    for (auto& x : *b) x = next();
  std::vector<int32_t> cu_q(size_t(s.items + 1)), cu_k(size_t(s.items + 1));
  for (int i = 0; i <= s.items; i++) {
    cu_q[size_t(i)] = int32_t(i * s.lq);
    cu_k[size_t(i)] = int32_t(i * s.lk);
  }
  AttnParams p;
  p.Hq = s.heads;
  p.Hkv = s.kv_heads;
  p.D = s.head_dim;
  p.scale = 1.0f / std::sqrt(float(s.head_dim));
  p.causal = s.causal;
  p.nseq = s.items;
  p.cu_q = cu_q.data();
  p.cu_k = cu_k.data();
  p.q_stride = p.o_stride = qrow;
  p.k_stride = p.v_stride = krow;
  std::vector<float> dout, dq, dk, dv;
  if (s.backward) {
    dout.assign(out.size(), 0.f);
    for (auto& x : dout) x = next();
    dq.assign(q.size(), 0.f);
    dk.assign(k.size(), 0.f);
    dv.assign(v.size(), 0.f);
  }
  auto run = [&] {
    if (s.backward)
      attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), out.data(), lse.data(), q.data(), k.data(), v.data(), p);
    else
      attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), p);
  };
  attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), p);  // warm-up, and out/lse for backward
  const RepeatTimes t = time_repeats(run, seconds, min_repeats, 10000);
  AttentionResult r;
  r.best_ms = t.best_ms;
  r.median_ms = t.median_ms;
  r.flop = attention_flop(s);
  r.gflops = r.flop / (r.best_ms * 1e-3) / 1e9;
  r.repeats = t.repeats;
  return r;
}

}  // namespace vr::bench
