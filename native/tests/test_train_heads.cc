// BCM / DAC cross-attention heads: forward (output and head-averaged attention) against a naive fp64
// implementation of nn.MultiheadAttention + LayerNorm, and every gradient (weights, BCM queries, DAC query
// inputs, the attention-map path) against central differences of that fp64 implementation, as directional
// derivatives along random directions.
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "model/bcm.h"
#include "model/dac.h"
#include "tests/harness.h"

namespace vr::test {

namespace {

using DVec = std::vector<double>;

// fp64 reference of one cross-attention block; tensors in the ParamStore layouts.
struct RefHead {
  int64_t D;
  int H;
  DVec in_w, in_b, out_w, out_b, ln_w, ln_b;
};

// Query group b (rows q_in[b*nq ..]) over key rows sets[set_of[b]]; Z [nb*nq, D]; A: per group [nq, N] appended.
void ref_forward(const RefHead& p, const DVec& q_in, int nq, const std::vector<DVec>& sets,
                 const std::vector<int>& set_of, DVec& Z, DVec& A) {
  const int64_t D = p.D, d = D / p.H, nb = int64_t(set_of.size());
  auto proj = [&](const double* x, int64_t part, int64_t o) {  // row o of (x W_part^T + b_part)
    double s = p.in_b[size_t(part * D + o)];
    for (int64_t c = 0; c < D; c++) s += x[c] * p.in_w[size_t((part * D + o) * D + c)];
    return s;
  };
  Z.assign(size_t(nb * nq * D), 0);
  A.clear();
  for (int64_t b = 0; b < nb; b++) {
    const DVec& X = sets[size_t(set_of[size_t(b)])];
    const int64_t N = int64_t(X.size()) / D;
    DVec K(size_t(N * D)), V(size_t(N * D));
    for (int64_t j = 0; j < N; j++)
      for (int64_t o = 0; o < D; o++) {
        K[size_t(j * D + o)] = proj(&X[size_t(j * D)], 1, o);
        V[size_t(j * D + o)] = proj(&X[size_t(j * D)], 2, o);
      }
    DVec Ab(size_t(nq * N), 0);
    for (int i = 0; i < nq; i++) {
      DVec q(static_cast<size_t>(D)), o(static_cast<size_t>(D), 0), pre(static_cast<size_t>(D));
      for (int64_t c = 0; c < D; c++) q[size_t(c)] = proj(&q_in[size_t((b * nq + i) * D)], 0, c);
      for (int h = 0; h < p.H; h++) {
        DVec s(static_cast<size_t>(N));
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j < N; j++) {
          double t = 0;
          for (int64_t c = 0; c < d; c++) t += q[size_t(h * d + c)] * K[size_t(j * D + h * d + c)];
          s[size_t(j)] = t / std::sqrt(double(d));
          mx = std::max(mx, s[size_t(j)]);
        }
        for (int64_t j = 0; j < N; j++) sum += (s[size_t(j)] = std::exp(s[size_t(j)] - mx));
        for (int64_t j = 0; j < N; j++) {
          const double pj = s[size_t(j)] / sum;
          Ab[size_t(i * N + j)] += pj / p.H;
          for (int64_t c = 0; c < d; c++) o[size_t(h * d + c)] += pj * V[size_t(j * D + h * d + c)];
        }
      }
      double mean = 0, var = 0;
      for (int64_t r = 0; r < D; r++) {
        double t = p.out_b[size_t(r)];
        for (int64_t c = 0; c < D; c++) t += o[size_t(c)] * p.out_w[size_t(r * D + c)];
        pre[size_t(r)] = t;
        mean += t / D;
      }
      for (int64_t r = 0; r < D; r++) var += (pre[size_t(r)] - mean) * (pre[size_t(r)] - mean) / D;
      const double rstd = 1 / std::sqrt(var + 1e-6);
      for (int64_t r = 0; r < D; r++)
        Z[size_t((b * nq + i) * D + r)] = (pre[size_t(r)] - mean) * rstd * p.ln_w[size_t(r)] + p.ln_b[size_t(r)];
    }
    A.insert(A.end(), Ab.begin(), Ab.end());
  }
}

void fill(Param* p, const std::vector<float>& v) {
  for (int64_t i = 0; i < p->numel; i++) p->w[i] = v[size_t(i)];
}

RefHead ref_of(const ResamplerWeights& w, int64_t D, int H) {
  auto d = [](const Param* p) { return DVec(p->w, p->w + p->numel); };
  return RefHead{D, H, d(w.in_w), d(w.in_b), d(w.out_w), d(w.out_b), d(w.ln_w), d(w.ln_b)};
}

void randomize(const ResamplerWeights& w, int64_t D, Rng& rng) {
  fill(w.in_w, rng.vec(size_t(3 * D * D), -0.5, 0.5));
  fill(w.in_b, rng.vec(size_t(3 * D), -0.2, 0.2));
  fill(w.out_w, rng.vec(size_t(D * D), -0.4, 0.4));
  fill(w.out_b, rng.vec(size_t(D), -0.2, 0.2));
  fill(w.ln_w, rng.vec(size_t(D), 0.5, 1.5));
  fill(w.ln_b, rng.vec(size_t(D), -0.2, 0.2));
}

double loss_of(const DVec& Z, const DVec& A, const std::vector<float>& cZ, const std::vector<float>& cA) {
  double l = 0;
  for (size_t i = 0; i < Z.size(); i++) l += cZ[i] * Z[i];
  for (size_t i = 0; i < A.size(); i++) l += cA[i] * A[i];
  return l;
}

// Directional check of an analytic gradient g (n floats) against fd(u) = d/de loss(x + e u).
void check_dir(const std::string& what, const float* g, int64_t n, Rng& rng,
               const std::function<double(const DVec&, double)>& loss_along) {
  DVec u(static_cast<size_t>(n));
  for (auto& x : u) x = rng.uniform();
  const double h = 1e-5, fd = (loss_along(u, h) - loss_along(u, -h)) / (2 * h);
  double an = 0;
  for (int64_t i = 0; i < n; i++) an += double(g[i]) * u[size_t(i)];
  check_fd(what, fd, an, 2e-4);
}

// Compares the float forward to the fp64 reference.
void check_forward(const std::string& what, const std::vector<float>& Z, const DVec& rZ, const std::vector<float>& A,
                   const DVec& rA) {
  check_close(what + " Z vs fp64", to_double(Z).data(), rZ.data(), Z.size(), 2e-5, 2e-5);
  check_true(what + " attention size", A.size() == rA.size());
  if (A.size() == rA.size()) check_close(what + " attention vs fp64", to_double(A).data(), rA.data(), A.size(), 2e-6, 1e-5);
}

}  // namespace

// BCM: learned queries broadcast to every box; box regions gathered from V. Several heads, uneven region sizes.
VR_TEST(train_bcm_forward_backward) {
  for (int64_t D : {int64_t(16), int64_t(128)}) {
    const int H = resampler_heads(D), nq = 3;
    Rng rng{uint64_t(D)};
    ParamStore ps;
    BoxCompression bcm(ps, "box_feature_resampler.", D, nq, true);
    ps.allocate();
    randomize(bcm.weights(), D, rng);
    fill(bcm.queries(), rng.vec(size_t(nq * D)));
    const int64_t nv = 9;
    const std::vector<float> V = rng.vec(size_t(nv * D), -2, 2);
    const std::vector<int32_t> idx = {4, 0, 1, 2, 3, 5, 8, 7}, cu = {0, 1, 4, 8};  // boxes of 1, 3 and 4 tokens
    const int64_t nb = 3;
    std::vector<float> Z(size_t(nb * nq * D));
    BcmCache cache;
    bcm.forward(V.data(), idx.data(), cu.data(), nb, Z.data(), cache, true);

    auto ref_loss = [&](const RefHead& p, const DVec& queries, const DVec& Vd, DVec* Zo, DVec* Ao) {
      DVec q_in;
      std::vector<DVec> sets;
      std::vector<int> set_of;
      for (int64_t b = 0; b < nb; b++) {
        q_in.insert(q_in.end(), queries.begin(), queries.end());
        DVec X;
        for (int32_t j = cu[size_t(b)]; j < cu[size_t(b + 1)]; j++)
          X.insert(X.end(), Vd.begin() + idx[size_t(j)] * D, Vd.begin() + (idx[size_t(j)] + 1) * D);
        sets.push_back(X);
        set_of.push_back(int(b));
      }
      DVec Zr, Ar;
      ref_forward(p, q_in, nq, sets, set_of, Zr, Ar);
      if (Zo) *Zo = Zr;
      if (Ao) *Ao = Ar;
    };
    const RefHead p0 = ref_of(bcm.weights(), D, H);
    const DVec q0(bcm.queries()->w, bcm.queries()->w + nq * D), V0(V.begin(), V.end());
    DVec rZ, rA;
    ref_loss(p0, q0, V0, &rZ, &rA);
    const std::string name = "bcm D=" + std::to_string(D) + " heads=" + std::to_string(H);
    check_forward(name, Z, rZ, cache.ca.attn, rA);

    // Backward with a random dZ (BCM's loss only reaches Z; the attention map is a stage-2 teacher output).
    const std::vector<float> cZ = rng.vec(Z.size()), cA(rA.size(), 0.f);
    bcm.backward(cache, cZ.data());
    const ResamplerWeights& w = bcm.weights();
    struct T { const char* n; Param* p; DVec RefHead::*field; };
    const T tensors[] = {{"in_proj_weight", w.in_w, &RefHead::in_w}, {"in_proj_bias", w.in_b, &RefHead::in_b},
                         {"out_proj.weight", w.out_w, &RefHead::out_w}, {"out_proj.bias", w.out_b, &RefHead::out_b},
                         {"output_norm.weight", w.ln_w, &RefHead::ln_w}, {"output_norm.bias", w.ln_b, &RefHead::ln_b}};
    for (const T& t : tensors)
      check_dir(name + " d" + t.n, t.p->g, t.p->numel, rng, [&](const DVec& u, double e) {
        RefHead p = p0;
        for (size_t i = 0; i < u.size(); i++) (p.*t.field)[i] += e * u[i];
        DVec Zr, Ar;
        ref_loss(p, q0, V0, &Zr, &Ar);
        return loss_of(Zr, Ar, cZ, cA);
      });
    check_dir(name + " dqueries", bcm.queries()->g, nq * D, rng, [&](const DVec& u, double e) {
      DVec q = q0;
      for (size_t i = 0; i < u.size(); i++) q[i] += e * u[i];
      DVec Zr, Ar;
      ref_loss(p0, q, V0, &Zr, &Ar);
      return loss_of(Zr, Ar, cZ, cA);
    });
  }
}

// DAC: hidden-state queries; two boxes share sample 0's keys (one projection, gradients of both), one box uses
// sample 2; sample 1 owns no box. The loss reaches both Z and the head-averaged attention (the KL path).
VR_TEST(train_dac_forward_backward) {
  for (int64_t D : {int64_t(16), int64_t(192)}) {
    const int H = resampler_heads(D), nq = 4;
    Rng rng{uint64_t(100 + D)};
    ParamStore ps;
    DynamicCompression dac(ps, "student_resampler.", D, true);
    ps.allocate();
    randomize(dac.weights(), D, rng);
    const std::vector<int32_t> cu_sample = {0, 5, 7, 13}, box_sample = {0, 0, 2};
    const int64_t nb = 3, nv = 13;
    const std::vector<float> V = rng.vec(size_t(nv * D), -2, 2), Hq = rng.vec(size_t(nb * nq * D), -2, 2);
    std::vector<float> Z(size_t(nb * nq * D));
    CrossAttnCache cache;
    dac.forward(Hq.data(), nb, nq, V.data(), cu_sample.data(), box_sample.data(), Z.data(), cache);

    auto ref_loss = [&](const RefHead& p, const DVec& q_in, DVec* Zo, DVec* Ao) {
      std::vector<DVec> sets;
      std::vector<int> set_of;
      for (int64_t b = 0; b < nb; b++) {
        const int s = box_sample[size_t(b)];
        sets.push_back(DVec(V.begin() + cu_sample[size_t(s)] * D, V.begin() + cu_sample[size_t(s + 1)] * D));
        set_of.push_back(int(b));
      }
      ref_forward(p, q_in, nq, sets, set_of, *Zo, *Ao);
    };
    const RefHead p0 = ref_of(dac.weights(), D, H);
    const DVec q0(Hq.begin(), Hq.end());
    DVec rZ, rA;
    ref_loss(p0, q0, &rZ, &rA);
    const std::string name = "dac D=" + std::to_string(D) + " heads=" + std::to_string(H);
    check_forward(name, Z, rZ, cache.attn, rA);

    const std::vector<float> cZ = rng.vec(Z.size()), cA = rng.vec(rA.size());
    std::vector<float> dHq(Hq.size(), 0.f);
    dac.backward(cache, cZ.data(), cA.data(), dHq.data());
    const ResamplerWeights& w = dac.weights();
    struct T { const char* n; Param* p; DVec RefHead::*field; };
    const T tensors[] = {{"in_proj_weight", w.in_w, &RefHead::in_w}, {"in_proj_bias", w.in_b, &RefHead::in_b},
                         {"out_proj.weight", w.out_w, &RefHead::out_w}, {"out_proj.bias", w.out_b, &RefHead::out_b},
                         {"output_norm.weight", w.ln_w, &RefHead::ln_w}, {"output_norm.bias", w.ln_b, &RefHead::ln_b}};
    for (const T& t : tensors)
      check_dir(name + " d" + t.n, t.p->g, t.p->numel, rng, [&](const DVec& u, double e) {
        RefHead p = p0;
        for (size_t i = 0; i < u.size(); i++) (p.*t.field)[i] += e * u[i];
        DVec Zr, Ar;
        ref_loss(p, q0, &Zr, &Ar);
        return loss_of(Zr, Ar, cZ, cA);
      });
    check_dir(name + " dqueries (LLM hidden states)", dHq.data(), int64_t(dHq.size()), rng,
              [&](const DVec& u, double e) {
                DVec q = q0;
                for (size_t i = 0; i < u.size(); i++) q[i] += e * u[i];
                DVec Zr, Ar;
                ref_loss(p0, q, &Zr, &Ar);
                return loss_of(Zr, Ar, cZ, cA);
              });
  }
}

VR_TEST(train_heads_rule_and_errors) {
  check_true("heads(64) = 1", resampler_heads(64) == 1);
  check_true("heads(3584) = 8 (dim 448)", resampler_heads(3584) == 8);
  check_true("heads(256) = 4", resampler_heads(256) == 4);
  check_true("heads(16) = 1", resampler_heads(16) == 1);
  ParamStore ps;
  BoxCompression bcm(ps, "box_feature_resampler.", 16, 2, true);
  ps.allocate();
  std::vector<float> V(16 * 4, 0.f), Z(2 * 16);
  const std::vector<int32_t> idx = {0}, cu_empty = {0, 0};
  BcmCache cache;
  expect_throw("BCM box without tokens", [&] { bcm.forward(V.data(), idx.data(), cu_empty.data(), 1, Z.data(), cache, false); });
  ParamStore frozen;
  BoxCompression teacher(frozen, "box_feature_resampler.", 16, 2, false);
  frozen.allocate();
  const std::vector<int32_t> cu1 = {0, 1};
  teacher.forward(V.data(), idx.data(), cu1.data(), 1, Z.data(), cache, true);
  expect_throw("backward through a frozen BCM", [&] { teacher.backward(cache, Z.data()); });
}

}  // namespace vr::test
