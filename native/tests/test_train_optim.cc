// Optimizer: global-norm clipping (torch clip_grad_norm_) and AdamW (torch.optim.AdamW) against a naive fp64
// transcription of their update rules over three steps, with decay / no-decay tensors and a frozen tensor.
#include <cmath>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "tests/harness.h"
#include "train/adamw.h"
#include "train/param_store.h"

namespace vr::test {

VR_TEST(train_adamw_and_clipping) {
  ParamStore ps;
  Param* W = ps.add("w", {3, 4}, true, true);   // decays (2-D)
  Param* b = ps.add("b", {3}, true, false);     // no decay (bias)
  Param* Q = ps.add("q", {1, 2, 2}, true, false);  // decays (3-D, like the BCM queries)
  Param* F = ps.add("frozen", {5}, false, false);
  ps.allocate();
  check_true("decay groups: 2-D yes, 1-D no, 3-D yes, frozen no", W->decay && !b->decay && Q->decay && !F->decay);
  check_true("frozen tensor has no gradient or moments", F->g == nullptr && F->m == nullptr);
  Rng rng(9);
  std::vector<Param*> tr = {W, b, Q};
  std::vector<std::vector<double>> w, m, v;
  for (Param* p : tr) {
    auto init = rng.vec(size_t(p->numel));
    for (int64_t i = 0; i < p->numel; i++) p->w[i] = init[size_t(i)];
    w.emplace_back(init.begin(), init.end());
    m.emplace_back(size_t(p->numel), 0.0);
    v.emplace_back(size_t(p->numel), 0.0);
  }
  for (int64_t i = 0; i < F->numel; i++) F->w[i] = 1.f;
  AdamWConfig cfg;
  cfg.weight_decay = 0.1;
  const double lrs[3] = {1e-2, 5e-3, 2e-2}, max_norm[3] = {1.0, 100.0, 0.0};
  for (int step = 1; step <= 3; step++) {
    double sq = 0;
    std::vector<std::vector<double>> g;
    for (Param* p : tr) {
      auto gi = rng.vec(size_t(p->numel), -2, 2);
      for (int64_t i = 0; i < p->numel; i++) {
        p->g[i] = gi[size_t(i)];
        sq += double(gi[size_t(i)]) * gi[size_t(i)];
      }
      g.emplace_back(gi.begin(), gi.end());
    }
    const double norm = std::sqrt(sq), coef = max_norm[step - 1] / (norm + 1e-6);
    const double got = clip_grad_norm(ps, max_norm[step - 1]);
    check_fd("step " + std::to_string(step) + " grad norm before clipping", got, norm, 1e-6);
    adamw_update(ps, cfg, lrs[step - 1], step);
    const double lr = lrs[step - 1], bc1 = 1 - std::pow(0.9, step), bc2 = 1 - std::pow(0.999, step);
    for (size_t t = 0; t < tr.size(); t++) {
      for (size_t i = 0; i < w[t].size(); i++) {
        double gi = g[t][i];
        if (max_norm[step - 1] > 0 && coef < 1) gi *= coef;
        if (tr[t]->decay) w[t][i] *= 1 - lr * 0.1;
        m[t][i] = 0.9 * m[t][i] + 0.1 * gi;
        v[t][i] = 0.999 * v[t][i] + 0.001 * gi * gi;
        w[t][i] -= lr / bc1 * m[t][i] / (std::sqrt(v[t][i]) / std::sqrt(bc2) + 1e-8);
      }
      check_close("step " + std::to_string(step) + " AdamW " + tr[t]->name, to_double(std::vector<float>(
                      tr[t]->w, tr[t]->w + tr[t]->numel)).data(), w[t].data(), w[t].size(), 1e-6, 1e-5);
    }
  }
  bool frozen_same = true;
  for (int64_t i = 0; i < F->numel; i++) frozen_same &= F->w[i] == 1.f;
  check_true("frozen tensor untouched", frozen_same);
  expect_throw("AdamW step 0", [&] { adamw_update(ps, cfg, 1e-3, 0); });
  expect_throw("AdamW NaN learning rate", [&] { adamw_update(ps, cfg, NAN, 4); });
}

// The trainer's fused step (norm, then one sweep of clip + AdamW + bf16 copies + gradient reset) against the
// separate passes (clip in place, AdamW, refresh_shadows, zero_grad): bit-identical weights, moments and copies.
VR_TEST(train_adamw_fused_sweep) {
  for (double max_norm : {0.5, 1e9, 0.0}) {
    ParamStore a(DType::BF16), b(DType::BF16);
    for (ParamStore* ps : {&a, &b}) {
      ps->add("w", {70, 1000}, true, true);  // > 2^16 elements: the threaded paths
      ps->add("bias", {70}, true, false);
      ps->add("frozen", {8, 8}, false, true);
      ps->allocate();
    }
    Rng rng(17);
    for (size_t t = 0; t < a.all().size(); t++) {
      Param &pa = *a.all()[t], &pb = *b.all()[t];
      const auto w0 = rng.vec(size_t(pa.numel));
      std::copy(w0.begin(), w0.end(), pa.w);
      std::copy(w0.begin(), w0.end(), pb.w);
    }
    a.refresh_shadows();
    b.refresh_shadows();
    AdamWConfig cfg;
    bool same = true;
    for (int step = 1; step <= 2; step++) {
      for (size_t t = 0; t < a.all().size(); t++) {
        Param &pa = *a.all()[t], &pb = *b.all()[t];
        if (!pa.trainable) continue;
        const auto g = rng.vec(size_t(pa.numel), -0.1f, 0.1f);
        std::copy(g.begin(), g.end(), pa.g);
        std::copy(g.begin(), g.end(), pb.g);
      }
      const double na = clip_grad_norm(a, max_norm);
      adamw_update(a, cfg, 1e-3, step);
      a.refresh_shadows();
      a.zero_grad();
      const double nb = grad_global_norm(b);
      adamw_update(b, cfg, 1e-3, step, clip_coefficient(nb, max_norm), /*zero_grads=*/true);
      same = same && na == nb;
      for (size_t t = 0; t < a.all().size(); t++) {
        const Param &pa = *a.all()[t], &pb = *b.all()[t];
        for (int64_t i = 0; i < pa.numel; i++) {
          same = same && pa.w[i] == pb.w[i] && (!pa.w16 || pa.w16[i] == pb.w16[i]);
          if (pa.trainable) same = same && pa.m[i] == pb.m[i] && pa.v[i] == pb.v[i] && pb.g[i] == 0.f;
        }
      }
    }
    check_true("fused clip + AdamW + bf16 copies + zero == separate passes (max_norm " + std::to_string(max_norm) + ")",
               same);
  }
}

}  // namespace vr::test
