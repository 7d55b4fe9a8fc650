// Flash-style attention backward on the CPU: probabilities are recomputed block by block from the forward's
// lse (P = exp(scale q.k - lse)), never stored. With Drow_i = dO_i . O_i:
//   dV_j += sum_i P_ij dO_i,   dS_ij = P_ij (dO_i . v_j - Drow_i),
//   dK_j += scale sum_i dS_ij q_i,   dQ_i += scale sum_j dS_ij k_j.
// Two passes so that every output row has one owner and no atomics are needed: pass 1 walks key blocks
// (owning dK, dV rows of one kv head; the G query heads that share it are summed there), pass 2 walks query
// blocks (owning dQ rows). Pass 2 recomputes S and dP: 7 block products instead of 5, but fully parallel.
// All gradients are accumulated (+=) into dq, dk, dv.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/attention_tiles.h"
#include "cpu/cpu_ops.h"
#include "cpu/simd.h"

namespace vr::cpu {

namespace {

constexpr int kBk = 64;

struct Unit {
  int seg, g;
  int32_t a0, a1;  // key rows (pass 1) or query rows (pass 2), relative to the segment
};

struct Rows {  // R = G * nq gathered query rows: row r = hh * nq + i
  std::vector<float> q, dout, drow, lse;
};

struct Geometry {
  int64_t q0, k0, Lq, Lk, shift;
};

Geometry geometry(const AttnParams& p, int s) {
  Geometry g;
  g.q0 = p.cu_q[s];
  g.k0 = p.cu_k[s];
  g.Lq = p.cu_q[s + 1] - g.q0;
  g.Lk = p.cu_k[s + 1] - g.k0;
  g.shift = g.Lk - g.Lq;
  return g;
}

void gather_rows(Rows& rw, const AttnParams& p, const Geometry& ge, int g, int64_t i0, int nq, const float* q,
                 const float* dout, const float* drow, const float* lse, int64_t Tq) {
  const int D = p.D, G = p.Hq / p.Hkv, R = G * nq;
  rw.q.resize(size_t(R) * D);
  rw.dout.resize(size_t(R) * D);
  rw.drow.resize(size_t(R));
  rw.lse.resize(size_t(R));
  for (int hh = 0; hh < G; hh++) {
    const int h = g * G + hh;
    for (int i = 0; i < nq; i++) {
      const int r = hh * nq + i;
      const int64_t row = ge.q0 + i0 + i;
      const float* qs = q + row * p.q_stride + int64_t(h) * D;
      const float* ds = dout + row * p.o_stride + int64_t(h) * D;
      for (int d = 0; d < D; d++) {
        rw.q[size_t(r) * D + d] = qs[d] * p.scale;
        rw.dout[size_t(r) * D + d] = ds[d];
      }
      rw.drow[size_t(r)] = drow[int64_t(h) * Tq + row];
      rw.lse[size_t(r)] = lse[int64_t(h) * Tq + row];
    }
  }
}

// In place: s (scores) -> P, dp (dO.v) -> dS, for R rows x nk keys starting at key j0 and queries from i0.
VR_CLONES void probs_and_dscores(float* s, float* dp, const Rows& rw, int R, int nq, int nk, int lds, bool causal,
                                 int64_t i0, int64_t j0, int64_t shift) {
  for (int r = 0; r < R; r++) {
    float* srow = s + r * lds;
    float* dprow = dp + r * lds;
    const float l = rw.lse[size_t(r)], dr = rw.drow[size_t(r)];
    int64_t lim = nk;
    if (causal) lim = std::min<int64_t>(nk, std::max<int64_t>(0, i0 + (r % nq) + 1 + shift - j0));
    if (l == -std::numeric_limits<float>::infinity()) lim = 0;  // query sees no key at all
#pragma omp simd
    for (int j = 0; j < nk; j++) {
      const float pj = j < lim ? fast_exp(srow[j] - l) : 0.f;
      srow[j] = pj;
      dprow[j] = pj * (dprow[j] - dr);
    }
  }
}

}  // namespace

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out,
                        const float* lse, const float* q, const float* k, const float* v,
                        const AttnParams& p) {
  const int D = p.D, G = p.Hq / p.Hkv;
  const int64_t Tq = p.cu_q[p.nseq];
  const int Bq = std::max(1, 128 / G);

  // Drow[h, t] = dO . O per query row and head.
  std::vector<float> drow(size_t(p.Hq) * size_t(Tq), 0.f);
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t t = 0; t < Tq; t++)
    for (int h = 0; h < p.Hq; h++) {
      const float* o = out + t * p.o_stride + int64_t(h) * D;
      const float* g = dout + t * p.o_stride + int64_t(h) * D;
      float s = 0.f;
      for (int d = 0; d < D; d++) s += o[d] * g[d];
      drow[size_t(h) * Tq + t] = s;
    }

  // Pass 1: dK, dV per (segment, kv head, key block).
  if (dk || dv) {
    std::vector<Unit> units;
    for (int s = 0; s < p.nseq; s++) {
      const int32_t Lk = p.cu_k[s + 1] - p.cu_k[s];
      for (int g = 0; g < p.Hkv; g++)
        for (int32_t j0 = 0; j0 < Lk; j0 += kBk) units.push_back({s, g, j0, std::min(Lk, j0 + kBk)});
    }
#pragma omp parallel
    {
      Rows rw;
      std::vector<float> kt(size_t(D) * kBk), vt(size_t(D) * kBk), S, dP, dK(size_t(kBk) * D), dV(size_t(kBk) * D);
#pragma omp for schedule(dynamic, 1)
      for (size_t ui = 0; ui < units.size(); ui++) {
        const Unit& u = units[ui];
        const Geometry ge = geometry(p, u.seg);
        const int nk = u.a1 - u.a0;
        const float* kb = k + (ge.k0 + u.a0) * p.k_stride + int64_t(u.g) * D;
        const float* vb = v + (ge.k0 + u.a0) * p.v_stride + int64_t(u.g) * D;
        transpose_k_block(kt.data(), kb, p.k_stride, nk, D, kBk);
        transpose_k_block(vt.data(), vb, p.v_stride, nk, D, kBk);
        std::fill(dK.begin(), dK.end(), 0.f);
        std::fill(dV.begin(), dV.end(), 0.f);
        // Queries that see at least one key of the block: i + 1 + shift > a0.
        const int64_t ifirst = p.causal ? std::max<int64_t>(0, u.a0 - ge.shift) : 0;
        for (int64_t i0 = ifirst; i0 < ge.Lq; i0 += Bq) {
          const int nq = int(std::min<int64_t>(Bq, ge.Lq - i0)), R = G * nq;
          gather_rows(rw, p, ge, u.g, i0, nq, q, dout, drow.data(), lse, Tq);
          S.resize(size_t(R) * kBk);
          dP.resize(size_t(R) * kBk);
          scores_block(S.data(), rw.q.data(), kt.data(), R, nk, D, kBk);
          scores_block(dP.data(), rw.dout.data(), vt.data(), R, nk, D, kBk);
          probs_and_dscores(S.data(), dP.data(), rw, R, nq, nk, kBk, p.causal, i0, u.a0, ge.shift);
          // dV += P^T dO, dK += dS^T (scale q): out rows are keys, summed over the R query rows.
          accumulate_block(dV.data(), D, nk, S.data(), 1, kBk, rw.dout.data(), D, R, D);
          accumulate_block(dK.data(), D, nk, dP.data(), 1, kBk, rw.q.data(), D, R, D);
        }
        for (int j = 0; j < nk; j++) {
          const int64_t row = ge.k0 + u.a0 + j;
          if (dk) {
            float* dst = dk + row * p.k_stride + int64_t(u.g) * D;
            for (int d = 0; d < D; d++) dst[d] += dK[size_t(j) * D + d];
          }
          if (dv) {
            float* dst = dv + row * p.v_stride + int64_t(u.g) * D;
            for (int d = 0; d < D; d++) dst[d] += dV[size_t(j) * D + d];
          }
        }
      }
    }
  }

  // Pass 2: dQ per (segment, kv head, query block).
  if (dq) {
    std::vector<Unit> units;
    for (int s = 0; s < p.nseq; s++) {
      const int32_t Lq = p.cu_q[s + 1] - p.cu_q[s];
      for (int g = 0; g < p.Hkv; g++)
        for (int32_t i0 = 0; i0 < Lq; i0 += Bq) units.push_back({s, g, i0, std::min(Lq, i0 + Bq)});
    }
#pragma omp parallel
    {
      Rows rw;
      std::vector<float> kt(size_t(D) * kBk), vt(size_t(D) * kBk), S, dP, dQ;
#pragma omp for schedule(dynamic, 1)
      for (size_t ui = 0; ui < units.size(); ui++) {
        const Unit& u = units[ui];
        const Geometry ge = geometry(p, u.seg);
        const int nq = u.a1 - u.a0, R = G * nq;
        gather_rows(rw, p, ge, u.g, u.a0, nq, q, dout, drow.data(), lse, Tq);
        S.resize(size_t(R) * kBk);
        dP.resize(size_t(R) * kBk);
        dQ.assign(size_t(R) * D, 0.f);
        const int64_t kend = p.causal ? std::min<int64_t>(ge.Lk, u.a1 + ge.shift) : ge.Lk;
        for (int64_t j0 = 0; j0 < kend; j0 += kBk) {
          const int nk = int(std::min<int64_t>(kBk, kend - j0));
          const float* kb = k + (ge.k0 + j0) * p.k_stride + int64_t(u.g) * D;
          const float* vb = v + (ge.k0 + j0) * p.v_stride + int64_t(u.g) * D;
          transpose_k_block(kt.data(), kb, p.k_stride, nk, D, kBk);
          transpose_k_block(vt.data(), vb, p.v_stride, nk, D, kBk);
          scores_block(S.data(), rw.q.data(), kt.data(), R, nk, D, kBk);
          scores_block(dP.data(), rw.dout.data(), vt.data(), R, nk, D, kBk);
          probs_and_dscores(S.data(), dP.data(), rw, R, nq, nk, kBk, p.causal, u.a0, j0, ge.shift);
          accumulate_block(dQ.data(), D, R, dP.data(), kBk, 1, kb, p.k_stride, nk, D);  // dQ += dS K
        }
        for (int r = 0; r < R; r++) {
          const int hh = r / nq, i = r % nq;
          float* dst = dq + (ge.q0 + u.a0 + i) * p.q_stride + int64_t(u.g * G + hh) * D;
          for (int d = 0; d < D; d++) dst[d] += p.scale * dQ[size_t(r) * D + d];
        }
      }
    }
  }
}

}  // namespace vr::cpu
