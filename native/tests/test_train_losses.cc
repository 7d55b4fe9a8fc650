// Training losses: the fused lm_head cross-entropy (value and gradients against an fp64 softmax and central
// differences, across logits chunks), the stage-1 decoupled alignment (values, gradients, clamp masks), the
// stage-2 MSE and attention-transfer KL (against an independent dense fp64 implementation and its differences).
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "ops/linear.h"
#include "tests/harness.h"
#include "train/cross_entropy.h"
#include "train/latent_losses.h"

namespace vr::test {

namespace {
using DVec = std::vector<double>;

// Sum over target rows of -log softmax(h W^T)[target], fp64.
double ref_ce(const DVec& h, const DVec& W, const std::vector<int32_t>& tg, int64_t D, int64_t V) {
  double total = 0;
  for (size_t t = 0; t < tg.size(); t++) {
    if (tg[t] == -100) continue;
    DVec z(static_cast<size_t>(V));
    double mx = -1e300, s = 0;
    for (int64_t j = 0; j < V; j++) {
      double a = 0;
      for (int64_t c = 0; c < D; c++) a += h[t * D + c] * W[size_t(j * D + c)];
      z[size_t(j)] = a;
      mx = std::max(mx, a);
    }
    for (int64_t j = 0; j < V; j++) s += std::exp(z[size_t(j)] - mx);
    total += mx + std::log(s) - z[size_t(tg[t])];
  }
  return total;
}

DVec random_dir(Rng& rng, size_t n) {
  DVec u(n);
  for (auto& e : u) e = rng.uniform();
  return u;
}
}  // namespace

VR_TEST(train_fused_cross_entropy) {
  const int64_t T = 9, D = 12, V = 37;
  Rng rng(21);
  const std::vector<float> h = rng.vec(size_t(T * D), -1, 1), W = rng.vec(size_t(V * D), -1, 1);
  const std::vector<int32_t> tg = {3, -100, 0, 36, -100, 7, 7, 20, -100};
  Linear L;
  L.N = V;
  L.K = D;
  L.w = W.data();
  const DVec hd(h.begin(), h.end()), Wd(W.begin(), W.end());
  const double ref = ref_ce(hd, Wd, tg, D, V);
  for (int64_t chunk : {int64_t(512), int64_t(2)}) {
    const std::string name = "fused CE (chunk " + std::to_string(chunk) + ")";
    FusedCrossEntropy ce;
    ce.set_max_chunk_rows(chunk);
    const double v = ce.value(h.data(), tg.data(), T, D, L);
    check_true(name + " counts 6 targets", ce.count() == 6);
    check_fd(name + " value vs fp64", v, ref, 1e-6);
    const float scale = 0.37f;
    std::vector<float> dh(h.size(), 0.f), dW(W.size(), 0.f);
    ce.backward(h.data(), scale, L, dW.data(), dh.data());
    const double e = 1e-6;
    {
      const DVec u = random_dir(rng, hd.size());
      DVec p = hd, m = hd;
      double an = 0;
      for (size_t i = 0; i < u.size(); i++) {
        p[i] += e * u[i];
        m[i] -= e * u[i];
        an += dh[i] * u[i];
      }
      check_fd(name + " dhidden", scale * (ref_ce(p, Wd, tg, D, V) - ref_ce(m, Wd, tg, D, V)) / (2 * e), an, 1e-5);
    }
    {
      const DVec u = random_dir(rng, Wd.size());
      DVec p = Wd, m = Wd;
      double an = 0;
      for (size_t i = 0; i < u.size(); i++) {
        p[i] += e * u[i];
        m[i] -= e * u[i];
        an += dW[i] * u[i];
      }
      check_fd(name + " dlm_head", scale * (ref_ce(hd, p, tg, D, V) - ref_ce(hd, m, tg, D, V)) / (2 * e), an, 1e-5);
    }
    bool untouched = true;
    for (int64_t c = 0; c < D; c++) untouched &= dh[size_t(1 * D + c)] == 0.f && dh[size_t(8 * D + c)] == 0.f;
    check_true(name + ": rows without a target get no gradient", untouched);
  }
  FusedCrossEntropy ce;
  const std::vector<int32_t> bad = {3, 37};
  expect_throw("CE target outside the vocabulary", [&] { ce.value(h.data(), bad.data(), 2, D, L); });
}

VR_TEST(train_alignment_and_distillation_losses) {
  // Alignment: value = MSE of the clamped tensors; gradients = w (Hc - Zc)/n, zero where a clamp saturates.
  const std::vector<float> H = {0.5f, -2.f, 3.f, 2e4f, 1.f, -1e4f}, Z = {1.f, -1.f, 3.5f, 0.f, -3e4f, 0.f};
  double ref = 0;
  const double Hc[6] = {0.5, -2, 3, 1e4, 1, -1e4}, Zc[6] = {1, -1, 3.5, 0, -1e4, 0};
  for (int i = 0; i < 6; i++) ref += (Hc[i] - Zc[i]) * (Hc[i] - Zc[i]) / 6;
  check_fd("alignment value (clamped at +-1e4)", align_value(H.data(), Z.data(), 6), ref, 1e-9);
  std::vector<float> dH(6, 0.f), dZ(6, 0.f);
  align_grad(H.data(), Z.data(), 6, 0.5f, dH.data(), dZ.data());
  const double eH[6] = {0.5 * (0.5 - 1) / 6, 0.5 * (-2 + 1) / 6, 0.5 * (3 - 3.5) / 6, 0, 0.5 * (1 + 1e4) / 6,
                        0.5 * (-1e4) / 6};  // H = -1e4 sits on the bound: torch passes the gradient
  const double eZ[6] = {-eH[0], -eH[1], -eH[2], -0.5 * (1e4 - 0) / 6, 0, 0.5 * 1e4 / 6};
  check_close("alignment dH (decoupled half, clamp mask)", to_double(dH).data(), eH, 6, 1e-6, 1e-6);
  check_close("alignment dZ (decoupled half, clamp mask)", to_double(dZ).data(), eZ, 6, 1e-6, 1e-6);
  check_true("non-finite detection", !all_finite(std::vector<float>{1.f, NAN}.data(), 2) &&
                                         !all_finite(std::vector<float>{INFINITY}.data(), 1) && all_finite(H.data(), 6));

  // MSE
  std::vector<float> da(6, 0.f);
  mse_grad(H.data(), Z.data(), 3, 2.f, da.data());
  const double emse[3] = {2 * 2 * (0.5 - 1) / 3., 2 * 2 * (-2 + 1) / 3., 2 * 2 * (3 - 3.5) / 3.};
  check_close("mse gradient", to_double(da).data(), emse, 3, 1e-6, 1e-6);
  check_fd("mse value", mse_value(H.data(), Z.data(), 3), (0.25 + 1 + 0.25) / 3, 1e-9);

  // KL: box 0 (sample of 5 tokens, box tokens {3, 1}), box 1 (sample of 4 tokens, box tokens {0, 2, 3}); nq = 2.
  Rng rng(3);
  const int nq = 2;
  const std::vector<int64_t> a_off = {0, 10, 18}, t_off = {0, 4, 10};
  const std::vector<int32_t> local = {3, 1, 0, 2, 3}, cu_box = {0, 2, 5};
  auto softmax_rows = [&](std::vector<float>& v, int64_t rows, int64_t n, size_t off) {
    for (int64_t r = 0; r < rows; r++) {
      double s = 0;
      for (int64_t j = 0; j < n; j++) s += v[off + size_t(r * n + j)];
      for (int64_t j = 0; j < n; j++) v[off + size_t(r * n + j)] = float(v[off + size_t(r * n + j)] / s);
    }
  };
  std::vector<float> A = rng.vec(18, 0.05, 1), At = rng.vec(10, 0.05, 1);
  softmax_rows(A, nq, 5, 0);
  softmax_rows(A, nq, 4, 10);
  softmax_rows(At, nq, 2, 0);
  softmax_rows(At, nq, 3, 4);
  At[4] = 0.f;  // a zero teacher probability contributes nothing
  AttnTransfer t;
  t.nb = 2;
  t.nq = nq;
  t.A = A.data();
  t.a_off = a_off.data();
  t.At = At.data();
  t.t_off = t_off.data();
  t.local_idx = local.data();
  t.cu_box = cu_box.data();
  // Dense fp64 KL written independently: teacher scattered into a dense [nb, nq, S_max] grid.
  auto dense_kl = [&](const DVec& Ad) {
    const int S = 5;
    double s = 0;
    for (int b = 0; b < 2; b++) {
      const int Sb = b == 0 ? 5 : 4, Nb = b == 0 ? 2 : 3;
      for (int q = 0; q < nq; q++) {
        DVec Tq(S, 0.0), Aq(S, 0.0);
        for (int j = 0; j < Nb; j++) Tq[size_t(local[size_t(cu_box[b] + j)])] = At[size_t(t_off[b] + q * Nb + j)];
        for (int j = 0; j < Sb; j++) Aq[size_t(j)] = Ad[size_t(a_off[b] + q * Sb + j)];
        for (int j = 0; j < S; j++)
          if (Tq[size_t(j)] > 0) s += Tq[size_t(j)] * (std::log(Tq[size_t(j)]) - std::log(Aq[size_t(j)] + 1e-9));
      }
    }
    return s / 2;
  };
  const DVec Ad(A.begin(), A.end());
  check_fd("KL value vs dense fp64 (batchmean over boxes)", kl_value(t), dense_kl(Ad), 1e-9);
  std::vector<float> dA(A.size(), 0.f);
  kl_grad(t, 0.7f, dA.data());
  const DVec u = random_dir(rng, A.size());
  DVec p = Ad, m = Ad;
  double an = 0;
  for (size_t i = 0; i < u.size(); i++) {
    p[i] += 1e-7 * u[i];
    m[i] -= 1e-7 * u[i];
    an += dA[i] * u[i];
  }
  check_fd("KL gradient vs central differences", 0.7 * (dense_kl(p) - dense_kl(m)) / 2e-7, an, 1e-5);
  const std::vector<int32_t> outside = {5, 1, 0, 2, 3};
  t.local_idx = outside.data();
  expect_throw("KL box index outside its sample", [&] { kl_value(t); });
}

}  // namespace vr::test
