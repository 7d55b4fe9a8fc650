// Flash-style attention forward on the CPU (see ops/attention.h for layouts and masking).
//
// Work unit: (segment, kv head, block of queries). The unit handles all G = Hq/Hkv query heads that share
// the kv head, so each K/V block loaded from memory serves G*Bq query rows (GQA decode: 7 rows per load).
// For each key block of Bk keys: S = Q K^T (K block transposed once so the dot products vectorise along
// keys), causal mask, online softmax (running max m, running sum l, rescaled accumulator), acc += P V.
// The full score matrix never exists; per-unit memory is O((G*Bq + Bk) * D).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/attention_tiles.h"
#include "cpu/cpu_ops.h"
#include "cpu/simd.h"

namespace vr::cpu {

namespace {

constexpr int kBk = 64;  // keys per block

struct Unit {
  int seg, g;
  int32_t i0, i1;  // query rows (relative to the segment)
};

struct Scratch {
  std::vector<float> q, kt, s, acc, m, l;
};

void run_unit(const Unit& u, float* out, float* lse, const float* q, const float* k, const float* v,
              const AttnParams& p, int64_t Tq, Scratch& sc) {
  const int D = p.D, G = p.Hq / p.Hkv;
  const int64_t q0 = p.cu_q[u.seg], k0 = p.cu_k[u.seg];
  const int64_t Lq = p.cu_q[u.seg + 1] - q0, Lk = p.cu_k[u.seg + 1] - k0;
  const int nq = u.i1 - u.i0, R = G * nq;
  sc.q.resize(size_t(R) * D);
  sc.kt.resize(size_t(D) * kBk);
  sc.s.resize(size_t(R) * kBk);
  sc.acc.assign(size_t(R) * D, 0.f);
  sc.m.assign(size_t(R), -std::numeric_limits<float>::infinity());
  sc.l.assign(size_t(R), 0.f);
  // Row r = hh * nq + i: query head g*G + hh, query u.i0 + i. Gather q (scaled) contiguously.
  for (int hh = 0; hh < G; hh++)
    for (int i = 0; i < nq; i++) {
      const float* src = q + (q0 + u.i0 + i) * p.q_stride + int64_t(u.g * G + hh) * D;
      float* dst = sc.q.data() + size_t(hh * nq + i) * D;
      for (int d = 0; d < D; d++) dst[d] = src[d] * p.scale;
    }
  // Key j is visible to query i iff j < i + 1 + (Lk - Lq) (causal, bottom-right aligned).
  const int64_t shift = Lk - Lq;
  const int64_t kend = p.causal ? std::min<int64_t>(Lk, u.i1 + shift) : Lk;
  for (int64_t j0 = 0; j0 < kend; j0 += kBk) {
    const int nk = int(std::min<int64_t>(kBk, kend - j0));
    const float* kb = k + (k0 + j0) * p.k_stride + int64_t(u.g) * D;
    const float* vb = v + (k0 + j0) * p.v_stride + int64_t(u.g) * D;
    transpose_k_block(sc.kt.data(), kb, p.k_stride, nk, D, kBk);
    scores_block(sc.s.data(), sc.q.data(), sc.kt.data(), R, nk, D, kBk);
    if (p.causal && j0 + nk > u.i0 + shift + 1) {  // some key of this block is hidden from some query
      for (int r = 0; r < R; r++) {
        const int64_t lim = u.i0 + (r % nq) + 1 + shift - j0;  // first hidden key (block-relative)
        float* srow = sc.s.data() + size_t(r) * kBk;
        for (int64_t j = std::max<int64_t>(0, lim); j < nk; j++) srow[j] = -std::numeric_limits<float>::infinity();
      }
    }
    softmax_pv_block(sc.acc.data(), sc.m.data(), sc.l.data(), sc.s.data(), vb, p.v_stride, R, nk, D, kBk);
  }
  for (int r = 0; r < R; r++) {
    const int hh = r / nq, i = r % nq;
    const int h = u.g * G + hh;
    const int64_t row = q0 + u.i0 + i;
    float* o = out + row * p.o_stride + int64_t(h) * D;
    const float l = sc.l[size_t(r)];
    const float inv = l > 0.f ? 1.0f / l : 0.f;
    const float* a = sc.acc.data() + size_t(r) * D;
    for (int d = 0; d < D; d++) o[d] = a[d] * inv;
    if (lse) lse[int64_t(h) * Tq + row] = l > 0.f ? sc.m[size_t(r)] + std::log(l) : -std::numeric_limits<float>::infinity();
  }
}

}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const AttnParams& p) {
  const int G = p.Hq / p.Hkv;
  // Query block: aim for ~128 rows (G heads x Bq queries) per unit.
  const int Bq = std::max(1, 128 / G);
  std::vector<Unit> units;
  for (int s = 0; s < p.nseq; s++) {
    const int32_t Lq = p.cu_q[s + 1] - p.cu_q[s];
    for (int g = 0; g < p.Hkv; g++)
      for (int32_t i0 = 0; i0 < Lq; i0 += Bq) units.push_back({s, g, i0, std::min(Lq, i0 + Bq)});
  }
  const int64_t Tq = p.cu_q[p.nseq];
#pragma omp parallel
  {
    Scratch sc;
#pragma omp for schedule(dynamic, 1)
    for (size_t u = 0; u < units.size(); u++) run_unit(units[u], out, lse, q, k, v, p, Tq, sc);
  }
}

}  // namespace vr::cpu
