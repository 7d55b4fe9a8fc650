// CUDA fused cross-entropy and AdamW vs fp64 references by the flash-attention rule. The CPU backend has no
// cross-entropy or AdamW op yet, so the same-precision baseline is a naive fp32 loop (the `float` instances
// of the templates below); the fp64 instances are the references.
#include <cmath>
#include <limits>
#include <string>

#include "cuda_tests/device_buffer.h"
#include "tests/harness.h"

namespace vr::test {
namespace {

// losses[n] and dlogits[n, :] of softmax cross-entropy, straight loops in T.
template <class T>
void ce_ref(std::vector<T>& loss, std::vector<T>& dlogits, const std::vector<float>& logits,
            const std::vector<int32_t>& tgt, int64_t N, int64_t V, double scale, int32_t ignore) {
  loss.assign(size_t(N), T(0));
  dlogits.assign(size_t(N * V), T(0));
  for (int64_t n = 0; n < N; n++) {
    if (tgt[size_t(n)] == ignore) continue;
    const float* x = &logits[size_t(n * V)];
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t c = 0; c < V; c++) m = std::max(m, T(x[c]));
    T s = 0;
    for (int64_t c = 0; c < V; c++) s += std::exp(T(x[c]) - m);
    const T lse = m + std::log(s);
    loss[size_t(n)] = lse - T(x[tgt[size_t(n)]]);
    for (int64_t c = 0; c < V; c++)
      dlogits[size_t(n * V + c)] = T(scale) * (std::exp(T(x[c]) - lse) - (c == tgt[size_t(n)] ? T(1) : T(0)));
  }
}

template <class S>
void cross_entropy_case(int64_t N, int64_t V, bool in_place, uint64_t seed) {
  Rng rng(seed);
  const auto logits = stored<S>(rng.vec(size_t(N * V), -8, 8));
  std::vector<int32_t> tgt(static_cast<size_t>(N));
  int valid = 0;
  for (int64_t n = 0; n < N; n++) {
    tgt[size_t(n)] = n % 4 == 2 ? -100 : int32_t(rng.next() % uint64_t(V));
    valid += tgt[size_t(n)] != -100;
  }
  const float scale = 1.0f / float(valid);
  const std::string tag = std::string("cuda cross_entropy ") + storage_name<S>() + " N=" + std::to_string(N) +
                          " V=" + std::to_string(V) + (in_place ? " in place" : "");
  std::vector<double> loss64, dl64;
  std::vector<float> loss32, dl32;
  ce_ref(loss64, dl64, logits, tgt, N, V, scale, -100);
  ce_ref(loss32, dl32, logits, tgt, N, V, scale, -100);
  dl32 = stored<S>(dl32);

  DeviceBuffer<S> d_logits(to_storage<S>(logits)), d_dl(in_place ? 1 : size_t(N * V));
  DeviceBuffer<int32_t> d_tgt(tgt);
  DeviceBuffer<float> d_loss(static_cast<size_t>(N));
  S* dl = in_place ? d_logits.get() : d_dl.get();
  cuda::cross_entropy_forward_backward(d_loss.get(), dl, d_logits.get(), d_tgt.get(), N, V, scale);
  const auto loss = d_loss.download();
  const auto grad = to_float(in_place ? d_logits.download() : d_dl.download());
  check_rule(tag + " loss", loss.data(), loss32.data(), loss64.data(), loss.size(), 1e-5);
  check_rule(tag + " dlogits", grad.data(), dl32.data(), dl64.data(), grad.size(), 1e-8);
}

template <class T>
void adamw_ref(std::vector<T>& p, std::vector<T>& m, std::vector<T>& v, const std::vector<float>& g,
               const cuda::AdamWConfig& c) {
  const T bc1 = T(1) - std::pow(T(c.beta1), T(c.step)), bc2 = T(1) - std::pow(T(c.beta2), T(c.step));
  for (size_t i = 0; i < p.size(); i++) {
    const T gi = T(c.grad_scale) * T(g[i]);
    p[i] *= T(1) - T(c.lr) * T(c.weight_decay);
    m[i] = T(c.beta1) * m[i] + (T(1) - T(c.beta1)) * gi;
    v[i] = T(c.beta2) * v[i] + (T(1) - T(c.beta2)) * gi * gi;
    p[i] -= T(c.lr) / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + T(c.eps));
  }
}

template <class S>
void adamw_case(int64_t n, uint64_t seed) {
  Rng rng(seed);
  const auto p0 = rng.vec(size_t(n), -1, 1), m0 = rng.vec(size_t(n), -1e-3, 1e-3);
  const auto v0 = rng.vec(size_t(n), 0, 1e-6), g = stored<S>(rng.vec(size_t(n), -2e-3, 2e-3));
  cuda::AdamWConfig c;
  c.lr = 2e-3f;
  c.step = 7;
  c.grad_scale = 0.5f;
  const std::string tag = std::string("cuda adamw grad ") + storage_name<S>() + " n=" + std::to_string(n);
  std::vector<double> p64 = to_double(p0), m64 = to_double(m0), v64 = to_double(v0);
  std::vector<float> p32 = p0, m32 = m0, v32 = v0;
  adamw_ref(p64, m64, v64, g, c);
  adamw_ref(p32, m32, v32, g, c);

  DeviceBuffer<float> d_p(p0), d_m(m0), d_v(v0);
  DeviceBuffer<S> d_g(to_storage<S>(g));
  DeviceBuffer<bf16> d_pb(static_cast<size_t>(n));
  cuda::adamw_step(d_p.get(), d_m.get(), d_v.get(), d_g.get(), n, c, d_pb.get());
  const auto p = d_p.download(), m = d_m.download(), v = d_v.download();
  const auto pb = from_bf16(d_pb.download());
  check_rule(tag + " param", p.data(), p32.data(), p64.data(), p.size(), 1e-7);
  check_rule(tag + " exp_avg", m.data(), m32.data(), m64.data(), m.size(), 1e-10);
  check_rule(tag + " exp_avg_sq", v.data(), v32.data(), v64.data(), v.size(), 1e-13);
  check_true(tag + " bf16 copy of the params is the rounded fp32 result",
             max_abs_diff(pb.data(), round_bf16(p).data(), p.size()) == 0);
}

}  // namespace

VR_TEST(cuda_cross_entropy) {
  cross_entropy_case<float>(9, 1000, false, 1);
  cross_entropy_case<float>(2, 40000, true, 2);  // a long row: 80 columns per thread
  cross_entropy_case<bf16>(9, 777, false, 3);
  cross_entropy_case<bf16>(5, 3000, true, 4);
  {  // a target outside the vocabulary: NaN loss, zero gradient (not a crash)
    DeviceBuffer<float> logits(std::vector<float>(64, 0.5f)), loss(1);
    DeviceBuffer<int32_t> tgt(std::vector<int32_t>{64});
    cuda::cross_entropy_forward_backward(loss.get(), logits.get(), logits.get(), tgt.get(), 1, 64, 1.0f);
    const auto l = loss.download(), g = logits.download();
    check_true("cuda cross_entropy: target out of range gives NaN loss and zero gradient",
               std::isnan(l[0]) && max_abs(g.data(), g.size()) == 0);
  }
  expect_throw("cuda cross_entropy V=0", [] {
    cuda::cross_entropy_forward_backward(nullptr, static_cast<float*>(nullptr), nullptr, nullptr, 1, 0, 1.f);
  });
}

VR_TEST(cuda_adamw) {
  adamw_case<float>(3000, 5);
  adamw_case<bf16>(1000, 6);
  expect_throw("cuda adamw step 0", [] {
    cuda::AdamWConfig c;
    c.step = 0;
    cuda::adamw_step(nullptr, nullptr, nullptr, static_cast<const float*>(nullptr), 1, c);
  });
}

}  // namespace vr::test
