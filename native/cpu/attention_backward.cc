// Flash-style attention backward on the CPU: probabilities are recomputed block by block from the forward's
// lse (P = exp(scale q.k - lse)), never stored. With Drow_i = dO_i . O_i:
//   dV_j += sum_i P_ij dO_i,   dS_ij = P_ij (dO_i . v_j - Drow_i),
//   dK_j += scale sum_i dS_ij q_i,   dQ_i += scale sum_j dS_ij k_j.
// Two passes so that every output row has one owner and no atomics are needed: pass 1 walks key blocks
// (owning dK, dV rows of one kv head; the G query heads that share it are summed there), pass 2 walks
// (query head, query block) units (owning dQ rows). Pass 2 recomputes S and dP: 7 block products instead
// of 5, but fully parallel. q (pre-scaled) and dO are first copied head-major ([h][t][D]) so that the rows
// of one head are contiguous for the tiles. All gradients are accumulated (+=) into dq, dk, dv.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/attention_tiles.h"
#include "cpu/cpu_ops.h"

namespace vr::cpu {

namespace {

constexpr int kBk = 64;  // keys per block
constexpr int kBq = 64;  // queries per block

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

// Head-major copies of the per-row inputs: rows of head h at [h * Tq + t].
struct HeadMajor {
  std::vector<float> q, dout, drow;
};

HeadMajor head_major(const AttnParams& p, const float* q, const float* dout, const float* out, int64_t Tq) {
  const int D = p.D;
  HeadMajor hm;
  hm.q.resize(size_t(p.Hq) * size_t(Tq) * D);
  hm.dout.resize(hm.q.size());
  hm.drow.resize(size_t(p.Hq) * size_t(Tq));
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t t = 0; t < Tq; t++)
    for (int h = 0; h < p.Hq; h++) {
      const float* qs = q + t * p.q_stride + int64_t(h) * D;
      const float* ds = dout + t * p.o_stride + int64_t(h) * D;
      const float* os = out + t * p.o_stride + int64_t(h) * D;
      float* qd = hm.q.data() + (size_t(h) * Tq + t) * D;
      float* dd = hm.dout.data() + (size_t(h) * Tq + t) * D;
      float s = 0.f;
      for (int d = 0; d < D; d++) {
        qd[d] = qs[d] * p.scale;
        dd[d] = ds[d];
        s += ds[d] * os[d];
      }
      hm.drow[size_t(h) * Tq + t] = s;
    }
  return hm;
}

// Visible-key limit (block-relative, exclusive) of each query row, 0 when the row sees no key at all.
void row_limits(int* lim, const float* lse, int nq, int64_t i0, int64_t j0, int nk, bool causal, int64_t shift) {
  for (int i = 0; i < nq; i++) {
    int64_t L = nk;
    if (causal) L = std::min<int64_t>(nk, std::max<int64_t>(0, i0 + i + 1 + shift - j0));
    if (lse[i] == -std::numeric_limits<float>::infinity()) L = 0;
    lim[i] = int(L);
  }
}

}  // namespace

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out,
                        const float* lse, const float* q, const float* k, const float* v,
                        const AttnParams& p) {
  const int D = p.D, G = p.Hq / p.Hkv;
  const int64_t Tq = p.cu_q[p.nseq];
  const HeadMajor hm = head_major(p, q, dout, out, Tq);

  struct Unit {
    int seg, h;
    int32_t a0, a1;
  };

  // Pass 1: dK, dV per (segment, kv head, key block); loops over the G query heads and all queries.
  if (dk || dv) {
    std::vector<Unit> units;
    for (int s = 0; s < p.nseq; s++) {
      const int32_t Lk = p.cu_k[s + 1] - p.cu_k[s];
      for (int g = 0; g < p.Hkv; g++)
        for (int32_t j0 = 0; j0 < Lk; j0 += kBk) units.push_back({s, g, j0, std::min(Lk, j0 + kBk)});
    }
#pragma omp parallel
    {
      std::vector<float> kt(size_t(D) * kBk), vt(size_t(D) * kBk), S(size_t(kBq) * kBk), dP(size_t(kBq) * kBk);
      std::vector<float> dK(size_t(kBk) * D), dV(size_t(kBk) * D);
      std::vector<int> lim(kBq);
#pragma omp for schedule(dynamic, 1)
      for (size_t ui = 0; ui < units.size(); ui++) {
        const Unit& u = units[ui];
        const Geometry ge = geometry(p, u.seg);
        const int nk = u.a1 - u.a0;
        const float* kb = k + (ge.k0 + u.a0) * p.k_stride + int64_t(u.h) * D;
        const float* vb = v + (ge.k0 + u.a0) * p.v_stride + int64_t(u.h) * D;
        transpose_k_block(kt.data(), kb, p.k_stride, nk, D, kBk);
        transpose_k_block(vt.data(), vb, p.v_stride, nk, D, kBk);
        std::fill(dK.begin(), dK.end(), 0.f);
        std::fill(dV.begin(), dV.end(), 0.f);
        // Queries that see at least one key of the block: i + 1 + shift > a0.
        const int64_t ifirst = p.causal ? std::max<int64_t>(0, u.a0 - ge.shift) : 0;
        for (int hh = 0; hh < G; hh++) {
          const int h = u.h * G + hh;
          for (int64_t i0 = ifirst; i0 < ge.Lq; i0 += kBq) {
            const int nq = int(std::min<int64_t>(kBq, ge.Lq - i0));
            const size_t row0 = size_t(h) * Tq + ge.q0 + i0;
            const float* qr = hm.q.data() + row0 * D;
            const float* dor = hm.dout.data() + row0 * D;
            row_limits(lim.data(), lse + row0, nq, i0, u.a0, nk, p.causal, ge.shift);
            scores_block(S.data(), qr, kt.data(), nq, nk, D, kBk);
            scores_block(dP.data(), dor, vt.data(), nq, nk, D, kBk);
            probs_dscores_block(S.data(), dP.data(), lse + row0, hm.drow.data() + row0, lim.data(), nq, nk, kBk);
            // dV += P^T dO, dK += dS^T (scale q): out rows are keys, summed over the query rows.
            accumulate_block(dV.data(), D, nk, S.data(), 1, kBk, dor, D, nq, D);
            accumulate_block(dK.data(), D, nk, dP.data(), 1, kBk, qr, D, nq, D);
          }
        }
        for (int j = 0; j < nk; j++) {
          const int64_t row = ge.k0 + u.a0 + j;
          if (dk) {
            float* dst = dk + row * p.k_stride + int64_t(u.h) * D;
            for (int d = 0; d < D; d++) dst[d] += dK[size_t(j) * D + d];
          }
          if (dv) {
            float* dst = dv + row * p.v_stride + int64_t(u.h) * D;
            for (int d = 0; d < D; d++) dst[d] += dV[size_t(j) * D + d];
          }
        }
      }
    }
  }

  // Pass 2: dQ per (segment, query head, query block).
  if (dq) {
    std::vector<Unit> units;
    for (int s = 0; s < p.nseq; s++) {
      const int32_t Lq = p.cu_q[s + 1] - p.cu_q[s];
      for (int h = 0; h < p.Hq; h++)
        for (int32_t i0 = 0; i0 < Lq; i0 += kBq) units.push_back({s, h, i0, std::min(Lq, i0 + kBq)});
    }
#pragma omp parallel
    {
      std::vector<float> kt(size_t(D) * kBk), vt(size_t(D) * kBk), S(size_t(kBq) * kBk), dP(size_t(kBq) * kBk);
      std::vector<float> dQ(size_t(kBq) * D);
      std::vector<int> lim(kBq);
#pragma omp for schedule(dynamic, 1)
      for (size_t ui = 0; ui < units.size(); ui++) {
        const Unit& u = units[ui];
        const Geometry ge = geometry(p, u.seg);
        const int g = u.h / G, nq = u.a1 - u.a0;
        const size_t row0 = size_t(u.h) * Tq + ge.q0 + u.a0;
        const float* qr = hm.q.data() + row0 * D;
        const float* dor = hm.dout.data() + row0 * D;
        std::fill(dQ.begin(), dQ.end(), 0.f);
        const int64_t kend = p.causal ? std::min<int64_t>(ge.Lk, u.a1 + ge.shift) : ge.Lk;
        for (int64_t j0 = 0; j0 < kend; j0 += kBk) {
          const int nk = int(std::min<int64_t>(kBk, kend - j0));
          const float* kb = k + (ge.k0 + j0) * p.k_stride + int64_t(g) * D;
          const float* vb = v + (ge.k0 + j0) * p.v_stride + int64_t(g) * D;
          transpose_k_block(kt.data(), kb, p.k_stride, nk, D, kBk);
          transpose_k_block(vt.data(), vb, p.v_stride, nk, D, kBk);
          row_limits(lim.data(), lse + row0, nq, u.a0, j0, nk, p.causal, ge.shift);
          scores_block(S.data(), qr, kt.data(), nq, nk, D, kBk);
          scores_block(dP.data(), dor, vt.data(), nq, nk, D, kBk);
          probs_dscores_block(S.data(), dP.data(), lse + row0, hm.drow.data() + row0, lim.data(), nq, nk, kBk);
          accumulate_block(dQ.data(), D, nq, dP.data(), kBk, 1, kb, p.k_stride, nk, D);  // dQ += dS K
        }
        for (int i = 0; i < nq; i++) {
          float* dst = dq + (ge.q0 + u.a0 + i) * p.q_stride + int64_t(u.h) * D;
          const float* src = dQ.data() + size_t(i) * D;
          for (int d = 0; d < D; d++) dst[d] += p.scale * src[d];
        }
      }
    }
  }
}

}  // namespace vr::cpu
