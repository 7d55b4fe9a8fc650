// RMSNorm / LayerNorm forward and backward against fp64 references (and the references' gradients against
// finite differences).
#include <string>

#include "core/dtype.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "tests/harness.h"
#include "tests/reference.h"

namespace vr::test {

namespace {

void rms_case(int64_t N, int64_t C, uint64_t seed) {
  const double eps = 1e-6;
  Rng rng(seed);
  const auto x = rng.vec(size_t(N * C), -3, 3), w = rng.vec(size_t(C), 0.5, 1.5), dy = rng.vec(static_cast<size_t>(N * C));
  const auto dx0 = rng.vec(static_cast<size_t>(N * C)), dw0 = rng.vec(static_cast<size_t>(C));
  const std::string name = "rmsnorm N=" + std::to_string(N) + " C=" + std::to_string(C);
  std::vector<float> out(x.size()), rstd(static_cast<size_t>(N));
  rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, float(eps));
  std::vector<double> rout(x.size()), rr(static_cast<size_t>(N));
  ref::rmsnorm<double>(rout, rr, to_double(x), to_double(w), N, C, eps);
  std::vector<float> nout(x.size()), nr(static_cast<size_t>(N));
  ref::rmsnorm<float>(nout, nr, x, w, N, C, eps);
  check_rule(name + " out", out.data(), nout.data(), rout.data(), out.size(), 1e-6);
  check_rule(name + " rstd", rstd.data(), nr.data(), rr.data(), rstd.size(), 1e-6);

  std::vector<float> dx = dx0, dw = dw0;
  rmsnorm_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), rstd.data(), N, C);
  std::vector<double> rdx = to_double(dx0), rdw = to_double(dw0);
  ref::rmsnorm_backward<double>(rdx, rdw, to_double(dy), to_double(x), to_double(w), N, C, eps);
  std::vector<float> ndx = dx0, ndw = dw0;
  ref::rmsnorm_backward<float>(ndx, ndw, dy, x, w, N, C, eps);
  check_rule(name + " backward dinp", dx.data(), ndx.data(), rdx.data(), dx.size(), 1e-5);
  check_rule(name + " backward dweight", dw.data(), ndw.data(), rdw.data(), dw.size(), 1e-5);
}

void ln_case(int64_t N, int64_t C, uint64_t seed) {
  const double eps = 1e-6;
  Rng rng(seed);
  const auto x = rng.vec(size_t(N * C), -3, 3), w = rng.vec(size_t(C), 0.5, 1.5), b = rng.vec(static_cast<size_t>(C));
  const auto dy = rng.vec(static_cast<size_t>(N * C)), dx0 = rng.vec(static_cast<size_t>(N * C)), dw0 = rng.vec(static_cast<size_t>(C)),
             db0 = rng.vec(static_cast<size_t>(C));
  const std::string name = "layernorm N=" + std::to_string(N) + " C=" + std::to_string(C);
  std::vector<float> out(x.size()), mean(static_cast<size_t>(N)), rstd(static_cast<size_t>(N));
  layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C, float(eps));
  std::vector<double> rout(x.size()), rm(static_cast<size_t>(N)), rr(static_cast<size_t>(N));
  ref::layernorm<double>(rout, rm, rr, to_double(x), to_double(w), to_double(b), N, C, eps);
  std::vector<float> nout(x.size()), nm(static_cast<size_t>(N)), nr(static_cast<size_t>(N));
  ref::layernorm<float>(nout, nm, nr, x, w, b, N, C, eps);
  check_rule(name + " out", out.data(), nout.data(), rout.data(), out.size(), 1e-6);
  check_rule(name + " mean", mean.data(), nm.data(), rm.data(), mean.size(), 1e-6);
  check_rule(name + " rstd", rstd.data(), nr.data(), rr.data(), rstd.size(), 1e-6);

  std::vector<float> dx = dx0, dw = dw0, db = db0;
  layernorm_backward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), mean.data(), rstd.data(), N, C);
  std::vector<double> rdx = to_double(dx0), rdw = to_double(dw0), rdb = to_double(db0);
  ref::layernorm_backward<double>(rdx, rdw, rdb, to_double(dy), to_double(x), to_double(w), N, C, eps);
  std::vector<float> ndx = dx0, ndw = dw0, ndb = db0;
  ref::layernorm_backward<float>(ndx, ndw, ndb, dy, x, w, N, C, eps);
  check_rule(name + " backward dinp", dx.data(), ndx.data(), rdx.data(), dx.size(), 1e-5);
  check_rule(name + " backward dweight", dw.data(), ndw.data(), rdw.data(), dw.size(), 1e-5);
  check_rule(name + " backward dbias", db.data(), ndb.data(), rdb.data(), db.size(), 1e-5);
}

}  // namespace

VR_TEST(norm_cases) {
  rms_case(1, 7, 1);
  rms_case(13, 1280, 2);
  rms_case(40, 3584, 3);
  ln_case(1, 7, 4);
  ln_case(13, 1280, 5);
  ln_case(40, 3584, 6);
}

// rmsnorm_forward_bf16 against fp64 (the naive baseline is the fp32 loop rounded to bf16), and bit-identical to
// rounding the fp32 op's output (the contract the bf16 model path relies on).
VR_TEST(rmsnorm_forward_bf16_cases) {
  for (auto [N, C] : {std::pair<int64_t, int64_t>{7, 80}, {305, 3584}, {3, 1280}, {64, 17}}) {
    Rng rng(uint64_t(N * 1000 + C));
    const auto x = rng.vec(size_t(N * C), -3, 3), w = rng.vec(size_t(C), 0.5, 1.5);
    std::vector<uint16_t> o16(size_t(N * C)), r16(size_t(N * C));
    rmsnorm_forward_bf16(o16.data(), x.data(), w.data(), N, C, 1e-6f);
    std::vector<float> o32(size_t(N * C)), ours(size_t(N * C)), naive(size_t(N * C)), nr(static_cast<size_t>(N));
    rmsnorm_forward(o32.data(), nullptr, x.data(), w.data(), N, C, 1e-6f);
    round_to_bf16(r16.data(), o32.data(), N * C);
    const std::string name = "rmsnorm bf16 N=" + std::to_string(N) + " C=" + std::to_string(C);
    check_true(name + " equals round_to_bf16(rmsnorm_forward)", o16 == r16);
    std::vector<double> rout(size_t(N * C)), rr(static_cast<size_t>(N));
    ref::rmsnorm<double>(rout, rr, to_double(x), to_double(w), N, C, 1e-6);
    ref::rmsnorm<float>(naive, nr, x, w, N, C, 1e-6);
    for (size_t i = 0; i < ours.size(); i++) {
      ours[i] = bf16_to_f32(o16[i]);
      naive[i] = bf16_to_f32(f32_to_bf16(naive[i]));
    }
    check_rule(name + " vs fp64", ours.data(), naive.data(), rout.data(), ours.size(), 1e-6);
  }
}

VR_TEST(norm_reference_gradients_fd) {
  const int64_t N = 3, C = 10;
  const double eps = 1e-6;
  Rng rng(7);
  const auto x = to_double(rng.vec(size_t(N * C), -2, 2)), w = to_double(rng.vec(size_t(C), 0.5, 1.5)),
             b = to_double(rng.vec(static_cast<size_t>(C))), dy = to_double(rng.vec(static_cast<size_t>(N * C)));
  const auto ux = to_double(rng.vec(static_cast<size_t>(N * C))), uw = to_double(rng.vec(static_cast<size_t>(C)));
  {
    std::vector<double> dx(x.size(), 0), dw(w.size(), 0);
    ref::rmsnorm_backward<double>(dx, dw, dy, x, w, N, C, eps);
    auto fx = [&](const std::vector<double>& xs) {
      std::vector<double> o(xs.size()), r(static_cast<size_t>(N));
      ref::rmsnorm<double>(o, r, xs, w, N, C, eps);
      return o;
    };
    auto fw = [&](const std::vector<double>& ws) {
      std::vector<double> o(x.size()), r(static_cast<size_t>(N));
      ref::rmsnorm<double>(o, r, x, ws, N, C, eps);
      return o;
    };
    check_fd("rmsnorm reference dinp", fd_directional(fx, x, ux, dy), dot(dx, ux));
    check_fd("rmsnorm reference dweight", fd_directional(fw, w, uw, dy), dot(dw, uw));
  }
  {
    std::vector<double> dx(x.size(), 0), dw(w.size(), 0), db(w.size(), 0);
    ref::layernorm_backward<double>(dx, dw, db, dy, x, w, N, C, eps);
    auto fx = [&](const std::vector<double>& xs) {
      std::vector<double> o(xs.size()), m(static_cast<size_t>(N)), r(static_cast<size_t>(N));
      ref::layernorm<double>(o, m, r, xs, w, b, N, C, eps);
      return o;
    };
    auto fw = [&](const std::vector<double>& ws) {
      std::vector<double> o(x.size()), m(static_cast<size_t>(N)), r(static_cast<size_t>(N));
      ref::layernorm<double>(o, m, r, x, ws, b, N, C, eps);
      return o;
    };
    auto fb = [&](const std::vector<double>& bs) {
      std::vector<double> o(x.size()), m(static_cast<size_t>(N)), r(static_cast<size_t>(N));
      ref::layernorm<double>(o, m, r, x, w, bs, N, C, eps);
      return o;
    };
    check_fd("layernorm reference dinp", fd_directional(fx, x, ux, dy), dot(dx, ux));
    check_fd("layernorm reference dweight", fd_directional(fw, w, uw, dy), dot(dw, uw));
    check_fd("layernorm reference dbias", fd_directional(fb, b, uw, dy), dot(db, uw));
  }
}

}  // namespace vr::test
