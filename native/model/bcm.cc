// Cross-attention resampler block (shared by BCM and DAC) and the BCM module. Notation (method.md §6.1):
//   q = Q0 W_q^T + b_q,  k = X W_k^T + b_k,  v = X W_v^T + b_v,  per head h (dim d = D/heads):
//   P_h = softmax(q_h k_h^T / sqrt(d)),  O = concat_h(P_h v_h),  Z = LayerNorm(O W_o^T + b_o)
// Backward (per head): dv_h = P^T dO_h,  dP = dO_h v_h^T (+ dA/heads from the head-averaged attention),
//   dS = P * (dP - rowsum(P * dP)),  dq_h = dS k_h / sqrt(d),  dk_h = dS^T q_h / sqrt(d).
// The attention itself is a direct loop: with 8 queries per group the score matrices are small, and the
// key/value projections (GEMMs) dominate the cost.
#include "model/bcm.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/parallel.h"
#include "ops/linear.h"
#include "ops/norm.h"

namespace vr {

namespace {

inline float dot(const float* a, const float* b, int64_t n) {
  float s = 0.f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

inline void axpy(float* y, float a, const float* x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

// Rows [row0, row0 + rows) of a GEMM weight (the in_proj slices W_q, W_k, W_v) with the matching bias slice.
Linear slice(const ParamStore& ps, const Param& w, const Param& b, int64_t row0, int64_t rows) {
  Linear L = ps.linear(w, &b);
  L.w = static_cast<const char*>(L.w) + size_t(row0 * L.K) * dtype_size(L.dtype);
  L.b = b.w + row0;
  L.N = rows;
  return L;
}

const float kEps = 1e-6f;

}  // namespace

int resampler_heads(int64_t D) { return int(std::max<int64_t>(1, std::min<int64_t>(8, D / 64))); }

ResamplerWeights add_resampler_params(ParamStore& ps, const std::string& prefix, int64_t D, bool trainable) {
  ResamplerWeights w;
  w.in_w = ps.add(prefix + "cross_attn.in_proj_weight", {3 * D, D}, trainable, true);
  w.in_b = ps.add(prefix + "cross_attn.in_proj_bias", {3 * D}, trainable, false);
  w.out_w = ps.add(prefix + "cross_attn.out_proj.weight", {D, D}, trainable, true);
  w.out_b = ps.add(prefix + "cross_attn.out_proj.bias", {D}, trainable, false);
  w.ln_w = ps.add(prefix + "output_norm.weight", {D}, trainable, false);
  w.ln_b = ps.add(prefix + "output_norm.bias", {D}, trainable, false);
  return w;
}

CrossAttention::CrossAttention(const ParamStore& ps, const ResamplerWeights& w, int64_t D, int heads)
    : ps_(ps), w_(w), D_(D), heads_(heads) {
  VR_CHECK(heads > 0 && D % heads == 0, "cross-attention: hidden size ", D, " is not divisible by ", heads,
           " heads");
}

void CrossAttention::forward(const CrossAttnInput& in, float* Z, CrossAttnCache& c, bool want_attn) const {
  const int64_t D = D_, nb = in.nb, nq = in.nq, R = nb * nq, d = D / heads_;
  const int H = heads_;
  const float scale = 1.0f / std::sqrt(float(d));
  VR_CHECK(nb >= 0 && nq > 0 && int64_t(in.set_of.size()) == nb, "cross-attention: bad query groups");
  for (int64_t b = 0; b < nb; b++)
    VR_CHECK(in.set_of[b] >= 0 && size_t(in.set_of[b]) < in.sets.size(), "cross-attention: group ", b,
             " names key set ", in.set_of[b], " of ", in.sets.size());
  for (const KeySet& s : in.sets) VR_CHECK(s.n > 0 && s.rows, "cross-attention: empty key set");
  c.in = in;
  c.q_in.assign(in.queries, in.queries + R * D);

  c.q.assign(size_t(R * D), 0.f);
  linear_forward(c.q.data(), c.q_in.data(), slice(ps_, *w_.in_w, *w_.in_b, 0, D), R);
  const size_t ns = in.sets.size();
  c.key_off.assign(ns + 1, 0);
  for (size_t s = 0; s < ns; s++) c.key_off[s + 1] = c.key_off[s] + in.sets[s].n;
  c.k.assign(size_t(c.key_off[ns] * D), 0.f);
  c.v.assign(c.k.size(), 0.f);
  const Linear Lk = slice(ps_, *w_.in_w, *w_.in_b, D, D), Lv = slice(ps_, *w_.in_w, *w_.in_b, 2 * D, D);
  for (size_t s = 0; s < ns; s++) {
    linear_forward(&c.k[size_t(c.key_off[s] * D)], in.sets[s].rows, Lk, in.sets[s].n);
    linear_forward(&c.v[size_t(c.key_off[s] * D)], in.sets[s].rows, Lv, in.sets[s].n);
  }

  c.prob_off.assign(size_t(nb + 1), 0);
  c.attn_off.assign(size_t(nb + 1), 0);
  for (int64_t b = 0; b < nb; b++) {
    const int64_t N = in.sets[size_t(in.set_of[b])].n;
    c.prob_off[b + 1] = c.prob_off[b] + H * nq * N;
    c.attn_off[b + 1] = c.attn_off[b] + nq * N;
  }
  c.probs.assign(size_t(c.prob_off[nb]), 0.f);
  c.heads_out.assign(size_t(R * D), 0.f);
  apply_num_threads();
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (int64_t b = 0; b < nb; b++)
    for (int h = 0; h < H; h++) {
      const int s = in.set_of[b];
      const int64_t N = in.sets[size_t(s)].n;
      const float* K = &c.k[size_t(c.key_off[s] * D)];
      const float* V = &c.v[size_t(c.key_off[s] * D)];
      float* P = &c.probs[size_t(c.prob_off[b] + h * nq * N)];
      for (int64_t i = 0; i < nq; i++) {
        const float* qi = &c.q[size_t((b * nq + i) * D + h * d)];
        float* p = P + i * N;
        float mx = -INFINITY;
        for (int64_t j = 0; j < N; j++) {
          p[j] = dot(qi, K + j * D + h * d, d) * scale;
          mx = std::max(mx, p[j]);
        }
        float sum = 0.f;
        for (int64_t j = 0; j < N; j++) {
          p[j] = std::exp(p[j] - mx);
          sum += p[j];
        }
        const float inv = 1.0f / sum;
        float* o = &c.heads_out[size_t((b * nq + i) * D + h * d)];
        for (int64_t j = 0; j < N; j++) {
          p[j] *= inv;
          axpy(o, p[j], V + j * D + h * d, d);
        }
      }
    }

  c.pre_norm.assign(size_t(R * D), 0.f);
  linear_forward(c.pre_norm.data(), c.heads_out.data(), ps_.linear(*w_.out_w, w_.out_b), R);
  c.ln_mean.assign(size_t(R), 0.f);
  c.ln_rstd.assign(size_t(R), 0.f);
  layernorm_forward(Z, c.ln_mean.data(), c.ln_rstd.data(), c.pre_norm.data(), w_.ln_w->w, w_.ln_b->w, R, D, kEps);

  c.attn.clear();
  if (want_attn) {
    c.attn.assign(size_t(c.attn_off[nb]), 0.f);
    for (int64_t b = 0; b < nb; b++) {
      const int64_t N = in.sets[size_t(in.set_of[b])].n;
      float* a = &c.attn[size_t(c.attn_off[b])];
      for (int h = 0; h < H; h++) {
        const float* P = &c.probs[size_t(c.prob_off[b] + h * nq * N)];
        for (int64_t e = 0; e < nq * N; e++) a[e] += P[e];
      }
      for (int64_t e = 0; e < nq * N; e++) a[e] /= float(H);
    }
  }
}

void CrossAttention::backward(const CrossAttnCache& c, const float* dZ, const float* dattn, float* dq_in) const {
  const ResamplerWeights& w = w_;
  VR_CHECK(w.in_w->trainable, "cross-attention backward: the weights are frozen");
  VR_CHECK(w.in_w->g && w.out_w->g && w.ln_w->g, "cross-attention backward: no host gradients (a GPU trainer's store)");
  const CrossAttnInput& in = c.in;
  const int64_t D = D_, nb = in.nb, nq = in.nq, R = nb * nq, d = D / heads_;
  const int H = heads_;
  const float scale = 1.0f / std::sqrt(float(d));
  if (R == 0) return;

  std::vector<float> dpre(size_t(R * D), 0.f), dheads(size_t(R * D), 0.f);
  layernorm_backward(dpre.data(), w.ln_w->g, w.ln_b->g, dZ, c.pre_norm.data(), w.ln_w->w, c.ln_mean.data(),
                     c.ln_rstd.data(), R, D);
  linear_backward(dheads.data(), w.out_w->g, w.out_b->g, dpre.data(), c.heads_out.data(),
                  ps_.linear(*w.out_w, w.out_b), R);

  // Attention backward per (key set, head): the unit owns the set's dk/dv rows of that head and the dq rows of
  // the groups that use the set, so no two threads write the same element.
  const int64_t ns = int64_t(in.sets.size());
  std::vector<std::vector<int64_t>> groups(static_cast<size_t>(ns));
  for (int64_t b = 0; b < nb; b++) groups[size_t(in.set_of[b])].push_back(b);
  std::vector<float> dq(size_t(R * D), 0.f), dk(c.k.size(), 0.f), dv(c.v.size(), 0.f);
  apply_num_threads();
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (int64_t s = 0; s < ns; s++)
    for (int h = 0; h < H; h++) {
      const int64_t N = in.sets[size_t(s)].n;
      const float* K = &c.k[size_t(c.key_off[s] * D)];
      const float* V = &c.v[size_t(c.key_off[s] * D)];
      float* dK = &dk[size_t(c.key_off[s] * D)];
      float* dV = &dv[size_t(c.key_off[s] * D)];
      std::vector<float> dS(static_cast<size_t>(N));
      for (int64_t b : groups[size_t(s)]) {
        const float* P = &c.probs[size_t(c.prob_off[b] + h * nq * N)];
        const float* dA = dattn ? dattn + c.attn_off[b] : nullptr;
        for (int64_t i = 0; i < nq; i++) {
          const float* p = P + i * N;
          const float* dOi = &dheads[size_t((b * nq + i) * D + h * d)];
          const float* qi = &c.q[size_t((b * nq + i) * D + h * d)];
          float rs = 0.f;
          for (int64_t j = 0; j < N; j++) {
            float dp = dot(dOi, V + j * D + h * d, d);
            if (dA) dp += dA[i * N + j] / float(H);
            dS[j] = dp;
            rs += p[j] * dp;
          }
          float* dqi = &dq[size_t((b * nq + i) * D + h * d)];
          for (int64_t j = 0; j < N; j++) {
            const float ds = p[j] * (dS[j] - rs) * scale;
            axpy(dqi, ds, K + j * D + h * d, d);
            axpy(dK + j * D + h * d, ds, qi, d);
            axpy(dV + j * D + h * d, p[j], dOi, d);
          }
        }
      }
    }

  const Linear Lq = slice(ps_, *w.in_w, *w.in_b, 0, D), Lk = slice(ps_, *w.in_w, *w.in_b, D, D),
               Lv = slice(ps_, *w.in_w, *w.in_b, 2 * D, D);
  for (int64_t s = 0; s < ns; s++) {
    const KeySet& ks = in.sets[size_t(s)];
    linear_backward(nullptr, w.in_w->g + D * D, w.in_b->g + D, &dk[size_t(c.key_off[s] * D)], ks.rows, Lk, ks.n);
    linear_backward(nullptr, w.in_w->g + 2 * D * D, w.in_b->g + 2 * D, &dv[size_t(c.key_off[s] * D)], ks.rows, Lv,
                    ks.n);
  }
  linear_backward(dq_in, w.in_w->g, w.in_b->g, dq.data(), c.q_in.data(), Lq, R);
}

// ---- BCM ---------------------------------------------------------------------------------------------------

BoxCompression::BoxCompression(ParamStore& ps, const std::string& prefix, int64_t D, int num_queries,
                               bool trainable)
    : ps_(ps),
      w_(add_resampler_params(ps, prefix, D, trainable)),
      queries_(ps.add(prefix + "queries", {1, num_queries, D}, trainable, false)),
      nq_(num_queries),
      ca_(ps, w_, D, resampler_heads(D)) {}

void BoxCompression::forward(const float* V, const int32_t* idx, const int32_t* cu, int64_t nb, float* Z,
                             BcmCache& cache, bool want_attn) const {
  const int64_t D = ca_.dim();
  VR_CHECK(nb >= 0 && cu[0] == 0, "BCM: box index offsets must start at 0");
  for (int64_t b = 0; b < nb; b++)
    VR_CHECK(cu[b + 1] > cu[b], "BCM: box ", b, " has no visual tokens");
  const int64_t total = nb ? cu[nb] : 0;
  cache.regions.assign(size_t(total * D), 0.f);
  for (int64_t r = 0; r < total; r++) std::memcpy(&cache.regions[size_t(r * D)], V + int64_t(idx[r]) * D, D * 4);
  CrossAttnInput in;
  in.nb = nb;
  in.nq = nq_;
  std::vector<float> q0(size_t(nb * nq_ * D));
  for (int64_t b = 0; b < nb; b++) std::memcpy(&q0[size_t(b * nq_ * D)], queries_->w, size_t(nq_ * D) * 4);
  in.queries = q0.data();
  for (int64_t b = 0; b < nb; b++) {
    in.sets.push_back(KeySet{&cache.regions[size_t(cu[b] * D)], int64_t(cu[b + 1] - cu[b])});
    in.set_of.push_back(int32_t(b));
  }
  ca_.forward(in, Z, cache.ca, want_attn);
  cache.ca.in.queries = nullptr;  // q0 dies here; backward reads the copy in cache.ca.q_in
}

void BoxCompression::backward(const BcmCache& cache, const float* dZ) const {
  const int64_t D = ca_.dim(), nb = cache.ca.in.nb;
  VR_CHECK(queries_->trainable, "BCM backward: BCM is frozen");
  VR_CHECK(queries_->g, "BCM backward: no host gradients (a GPU trainer's store)");
  std::vector<float> dq0(size_t(nb * nq_ * D), 0.f);
  ca_.backward(cache.ca, dZ, nullptr, dq0.data());
  for (int64_t b = 0; b < nb; b++)
    for (int64_t e = 0; e < nq_ * D; e++) queries_->g[e] += dq0[size_t(b * nq_ * D + e)];
}

}  // namespace vr
