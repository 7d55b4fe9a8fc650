// SwiGLU, exact-erf GELU, add_inplace and embedding against fp64 references.
#include <cmath>
#include <string>

#include "core/dtype.h"
#include "ops/activation.h"
#include "ops/embedding.h"
#include "tests/harness.h"
#include "tests/reference.h"

namespace vr::test {

VR_TEST(activation_cases) {
  for (int64_t n : {int64_t(1), int64_t(37), int64_t(100000)}) {
    Rng rng{uint64_t(n)};
    const auto g = rng.vec(size_t(n), -12, 12), u = rng.vec(size_t(n), -3, 3), dy = rng.vec(static_cast<size_t>(n));
    const std::string sz = " n=" + std::to_string(n);
    // swiglu forward (in place on gate, as the model calls it)
    std::vector<float> out = g;
    swiglu_forward(out.data(), out.data(), u.data(), n);
    std::vector<double> r(static_cast<size_t>(n));
    std::vector<float> nv(static_cast<size_t>(n));
    for (size_t i = 0; i < size_t(n); i++) {
      r[i] = ref::silu<double>(g[i]) * u[i];
      nv[i] = ref::silu<float>(g[i]) * u[i];
    }
    check_rule("swiglu forward" + sz, out.data(), nv.data(), r.data(), r.size(), 1e-6);
    // swiglu into bf16: within half a bf16 ulp (RNE) of the fp64 value, give or take the fp32 error
    std::vector<uint16_t> o16(static_cast<size_t>(n));
    swiglu_forward_bf16(o16.data(), g.data(), u.data(), n);
    bool in_half_ulp = true;
    for (size_t i = 0; i < size_t(n); i++) {
      const double v = bf16_to_f32(o16[i]);
      in_half_ulp &= std::fabs(v - r[i]) <= std::fabs(r[i]) * (1.0 / 256) + 1e-6;
    }
    check_true("swiglu forward into bf16 (half ulp of the fp64 value)" + sz, in_half_ulp);
    std::vector<float> dg(static_cast<size_t>(n)), du(static_cast<size_t>(n)), ndg(static_cast<size_t>(n)), ndu(static_cast<size_t>(n));
    std::vector<double> rdg(static_cast<size_t>(n)), rdu(static_cast<size_t>(n));
    swiglu_backward(dg.data(), du.data(), dy.data(), g.data(), u.data(), n);
    for (size_t i = 0; i < size_t(n); i++) {
      ref::swiglu_grad<double>(g[i], u[i], dy[i], &rdg[i], &rdu[i]);
      ref::swiglu_grad<float>(g[i], u[i], dy[i], &ndg[i], &ndu[i]);
    }
    check_rule("swiglu backward dgate" + sz, dg.data(), ndg.data(), rdg.data(), rdg.size(), 1e-6);
    check_rule("swiglu backward dup" + sz, du.data(), ndu.data(), rdu.data(), rdu.size(), 1e-6);
    // gelu
    std::vector<float> ge(static_cast<size_t>(n)), nge(static_cast<size_t>(n)), gd(static_cast<size_t>(n)), ngd(static_cast<size_t>(n));
    std::vector<double> rge(static_cast<size_t>(n)), rgd(static_cast<size_t>(n));
    gelu_erf_forward(ge.data(), g.data(), n);
    gelu_erf_backward(gd.data(), dy.data(), g.data(), n);
    for (size_t i = 0; i < size_t(n); i++) {
      rge[i] = ref::gelu_erf<double>(g[i]);
      nge[i] = ref::gelu_erf<float>(g[i]);
      rgd[i] = dy[i] * ref::gelu_erf_grad<double>(g[i]);
      ngd[i] = dy[i] * ref::gelu_erf_grad<float>(g[i]);
    }
    check_rule("gelu_erf forward" + sz, ge.data(), nge.data(), rge.data(), rge.size(), 1e-6);
    check_rule("gelu_erf backward" + sz, gd.data(), ngd.data(), rgd.data(), rgd.size(), 1e-6);
    // add
    std::vector<float> a = g;
    add_inplace(a.data(), u.data(), n);
    bool exact = true;
    for (size_t i = 0; i < size_t(n); i++) exact &= a[i] == g[i] + u[i];
    check_true("add_inplace exact" + sz, exact);
  }
  // The fp64 reference derivatives against finite differences.
  for (double z : {-4.0, -0.7, 0.0, 0.3, 2.5}) {
    const double h = 1e-6;
    check_fd("gelu_erf reference derivative at " + std::to_string(z),
             (ref::gelu_erf<double>(z + h) - ref::gelu_erf<double>(z - h)) / (2 * h), ref::gelu_erf_grad<double>(z),
             1e-7);
    double dg, du;
    ref::swiglu_grad<double>(z, 1.3, 1.0, &dg, &du);
    check_fd("swiglu reference dgate at " + std::to_string(z),
             (ref::silu<double>(z + h) - ref::silu<double>(z - h)) * 1.3 / (2 * h), dg, 1e-7);
  }
}

VR_TEST(embedding_cases) {
  const int64_t V = 50, C = 37, T = 12;
  Rng rng(5);
  const auto table = rng.vec(static_cast<size_t>(V * C));
  std::vector<uint16_t> tb(table.size()), th(table.size());
  for (size_t i = 0; i < table.size(); i++) {
    tb[i] = f32_to_bf16(table[i]);
    th[i] = f32_to_f16(table[i]);
  }
  std::vector<int32_t> ids(static_cast<size_t>(T));
  for (auto& id : ids) id = int32_t(rng.next() % uint64_t(V));
  ids[3] = ids[7];  // repeated id: its gradient rows must add up
  for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
    std::vector<float> out(static_cast<size_t>(T * C));
    const void* src = dt == DType::F32 ? static_cast<const void*>(table.data())
                      : dt == DType::BF16 ? static_cast<const void*>(tb.data())
                                          : static_cast<const void*>(th.data());
    embedding_forward(out.data(), ids.data(), T, src, dt, V, C);
    bool exact = true;
    for (int64_t t = 0; t < T; t++)
      for (int64_t c = 0; c < C; c++) {
        const size_t e = size_t(ids[size_t(t)] * C + c);
        const float want = dt == DType::F32 ? table[e] : dt == DType::BF16 ? bf16_to_f32(tb[e]) : f16_to_f32(th[e]);
        exact &= out[size_t(t * C + c)] == want;
      }
    check_true(std::string("embedding forward ") + dtype_name(dt) + " exact rows", exact);
  }
  const auto dout = rng.vec(static_cast<size_t>(T * C));
  const auto d0 = rng.vec(static_cast<size_t>(V * C));
  std::vector<float> dt = d0;
  embedding_backward(dt.data(), dout.data(), ids.data(), T, V, C);
  std::vector<double> r = to_double(d0);
  std::vector<float> nv = d0;
  for (int64_t t = 0; t < T; t++)
    for (int64_t c = 0; c < C; c++) {
      r[size_t(ids[size_t(t)] * C + c)] += dout[size_t(t * C + c)];
      nv[size_t(ids[size_t(t)] * C + c)] += dout[size_t(t * C + c)];
    }
  check_rule("embedding backward (repeated ids)", dt.data(), nv.data(), r.data(), r.size(), 1e-6);
  std::vector<float> out(static_cast<size_t>(T * C));
  std::vector<int32_t> bad = ids;
  bad[5] = int32_t(V);
  expect_throw("embedding id == V", [&] { embedding_forward(out.data(), bad.data(), T, table.data(), DType::F32, V, C); });
  bad[5] = -1;
  expect_throw("embedding id < 0", [&] { embedding_forward(out.data(), bad.data(), T, table.data(), DType::F32, V, C); });
  expect_throw("embedding I32 table",
               [&] { embedding_forward(out.data(), ids.data(), T, table.data(), DType::I32, V, C); });
  expect_throw("embedding_backward bad id", [&] { embedding_backward(dt.data(), dout.data(), bad.data(), T, V, C); });
}

}  // namespace vr::test
