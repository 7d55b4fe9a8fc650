// swiglu_gemms_bf16 (gate/up GEMMs with the SwiGLU in their oneDNN epilogues) and the padded-row GEMMs
// (linear_forward[_bf16in] with `padded`) against fp64 references with the flash rule: the naive baseline rounds
// as the fused path does (x, weights bf16; silu(gate) rounded to bf16; the product rounded to bf16). Also the
// bf16-output GELU of the ViT merger (vectorised erf) against fp64 erf.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "core/dtype.h"
#include "ops/activation.h"
#include "model/swiglu_mlp.h"
#include "ops/linear.h"
#include "tests/harness.h"
#include "tests/reference.h"

namespace vr::test {

namespace {

float r16(float v) { return bf16_to_f32(f32_to_bf16(v)); }

struct Weights {
  std::vector<float> w;      // bf16 values as fp32
  std::vector<uint16_t> w16;
  std::vector<float> b;
  Linear L;
};

Weights make_weight(Rng& rng, int64_t N, int64_t K, bool bias) {
  Weights W;
  W.w = rng.vec(size_t(N * K), -0.1, 0.1);
  W.w16.resize(W.w.size());
  for (size_t i = 0; i < W.w.size(); i++) {
    W.w16[i] = f32_to_bf16(W.w[i]);
    W.w[i] = bf16_to_f32(W.w16[i]);
  }
  if (bias) W.b = rng.vec(size_t(N), -0.5, 0.5);
  W.L.dtype = DType::BF16;
  W.L.N = N;
  W.L.K = K;
  W.L.w = W.w16.data();
  W.L.b = bias ? W.b.data() : nullptr;
  return W;
}

void swiglu_case(int64_t M, int64_t F, int64_t K, bool bias, uint64_t seed) {
  Rng rng(seed);
  Weights g = make_weight(rng, F, K, bias), u = make_weight(rng, F, K, bias);
  const int64_t Mp = linear_padded_rows(M);
  std::vector<float> x = rng.vec(size_t(M * K), -2, 2);
  std::vector<uint16_t> x16(size_t(Mp * K), 0);
  for (size_t i = 0; i < x.size(); i++) {
    x16[i] = f32_to_bf16(x[i]);
    x[i] = bf16_to_f32(x16[i]);
  }
  std::vector<uint16_t> act16(size_t(Mp * F), 0x7fc0), silu16(size_t(Mp * F));  // act16 starts as NaNs
  char name[128];
  std::snprintf(name, sizeof name, "swiglu_gemms_bf16 M=%lld (padded %lld) F=%lld K=%lld%s", (long long)M,
                (long long)Mp, (long long)F, (long long)K, bias ? " +bias" : "");
  if (!swiglu_gemms_bf16(act16.data(), silu16.data(), x16.data(), g.L, u.L, M)) {
    check_true(std::string(name) + ": not available here (no oneDNN or no fused epilogue), skipped", true);
    return;
  }
  std::vector<double> ref(size_t(M * F));
  std::vector<float> naive(size_t(M * F)), ours(size_t(M * F));
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < F; n++) {
      double gd = bias ? g.b[size_t(n)] : 0, ud = bias ? u.b[size_t(n)] : 0;
      float gf = bias ? g.b[size_t(n)] : 0, uf = bias ? u.b[size_t(n)] : 0;
      for (int64_t k = 0; k < K; k++) {
        const float xv = x[size_t(m * K + k)];
        gd += double(xv) * g.w[size_t(n * K + k)];
        ud += double(xv) * u.w[size_t(n * K + k)];
        gf += xv * g.w[size_t(n * K + k)];
        uf += xv * u.w[size_t(n * K + k)];
      }
      ref[size_t(m * F + n)] = gd / (1 + std::exp(-gd)) * ud;
      naive[size_t(m * F + n)] = r16(r16(gf / (1 + std::exp(-gf))) * uf);
      ours[size_t(m * F + n)] = bf16_to_f32(act16[size_t(m * F + n)]);
    }
  check_rule(name, ours.data(), naive.data(), ref.data(), ours.size(), 1e-6);
}

// linear_forward_bf16in / linear_forward with `padded`: the first M output rows equal the unpadded call's, with and
// without accumulate (the padded rows are junk by contract and not compared).
void padded_case(int64_t M, int64_t N, int64_t K, bool acc, uint64_t seed) {
  Rng rng(seed);
  Weights w = make_weight(rng, N, K, true);
  const int64_t Mp = linear_padded_rows(M);
  const std::vector<float> x = rng.vec(size_t(Mp * K), -2, 2);
  std::vector<uint16_t> x16(size_t(Mp * K));
  round_to_bf16(x16.data(), x.data(), Mp * K);
  const std::vector<float> init = rng.vec(size_t(Mp * N));
  std::vector<float> plain(init), pad16(init), pad32(init);
  linear_forward_bf16in(plain.data(), x16.data(), w.L, M, acc);
  linear_forward_bf16in(pad16.data(), x16.data(), w.L, M, acc, /*padded=*/true);
  linear_forward(pad32.data(), x.data(), w.L, M, acc, /*padded=*/true);
  std::vector<double> d16(size_t(M * N)), d32(size_t(M * N)), dp(size_t(M * N));
  for (size_t i = 0; i < d16.size(); i++) {
    d16[i] = pad16[i];
    d32[i] = pad32[i];
    dp[i] = plain[i];
  }
  char name[128];
  std::snprintf(name, sizeof name, "padded GEMM M=%lld (rows %lld) N=%lld K=%lld%s", (long long)M, (long long)Mp,
                (long long)N, (long long)K, acc ? " +acc" : "");
  check_close(std::string(name) + " bf16 input == unpadded call", d16.data(), dp.data(), d16.size(), 1e-6, 1e-6);
  check_close(std::string(name) + " fp32 input == unpadded call", d32.data(), dp.data(), d32.size(), 1e-6, 1e-6);
  // and against fp64 on the bf16-rounded input (only the accumulation order differs from the naive fp32 loop)
  std::vector<double> ref(size_t(M * N));
  std::vector<float> naive(size_t(M * N));
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      double sd = w.b[size_t(n)];
      float sf = w.b[size_t(n)];
      for (int64_t k = 0; k < K; k++) {
        const float xv = bf16_to_f32(x16[size_t(m * K + k)]);
        sd += double(xv) * w.w[size_t(n * K + k)];
        sf += xv * w.w[size_t(n * K + k)];
      }
      ref[size_t(m * N + n)] = (acc ? double(init[size_t(m * N + n)]) : 0.0) + sd;
      naive[size_t(m * N + n)] = (acc ? init[size_t(m * N + n)] : 0.f) + sf;
    }
  check_rule(std::string(name) + " vs fp64", pad16.data(), naive.data(), ref.data(), ref.size(), 1e-5);
}

}  // namespace

VR_TEST(swiglu_gemms_bf16_cases) {
  swiglu_case(305, 160, 96, false, 11);  // LLM-like: 305 rows run as 312, no bias
  swiglu_case(100, 72, 64, true, 12);    // ViT-like: biases
  swiglu_case(64, 48, 40, true, 13);
  swiglu_case(3, 48, 40, false, 14);     // decode-sized: not fused (the caller's GEMV path), reported as skipped
}

// The model's MLP (model/swiglu_mlp.h) over row chunks with padded buffers, as the towers call it: x += down(act),
// act = bf16(bf16(silu(h Wg^T + bg)) * (h Wu^T + bu)). M = 330 in chunks of 128: two full chunks and a last one of 74
// rows that runs padded to 80 in place (x and h16 allocated with linear_padded_rows(330) = 336 rows).
VR_TEST(swiglu_mlp_forward_chunked_padded) {
  const int64_t M = 330, D = 64, F = 96, chunk = 128;
  Rng rng(50);
  Weights g = make_weight(rng, F, D, true), u = make_weight(rng, F, D, true), dn = make_weight(rng, D, F, true);
  const int64_t Mp = linear_padded_rows(M);
  std::vector<float> h = rng.vec(size_t(M * D), -2, 2);
  std::vector<uint16_t> h16(size_t(Mp * D), 0);
  for (size_t i = 0; i < h.size(); i++) {
    h16[i] = f32_to_bf16(h[i]);
    h[i] = bf16_to_f32(h16[i]);
  }
  const std::vector<float> x0 = rng.vec(size_t(Mp * D));
  std::vector<float> x = x0;
  MLPScratch scratch;
  swiglu_mlp_forward(x.data(), nullptr, M, D, g.L, u.L, dn.L, scratch, chunk, h16.data(), /*rows_padded=*/true);
  std::vector<double> ref(size_t(M * D));
  std::vector<float> naive(size_t(M * D));
  std::vector<double> act_d(static_cast<size_t>(F));
  std::vector<float> act_f(static_cast<size_t>(F));
  for (int64_t m = 0; m < M; m++) {
    for (int64_t n = 0; n < F; n++) {
      double gd = g.b[size_t(n)], ud = u.b[size_t(n)];
      float gf = g.b[size_t(n)], uf = u.b[size_t(n)];
      for (int64_t k = 0; k < D; k++) {
        const float xv = h[size_t(m * D + k)];
        gd += double(xv) * g.w[size_t(n * D + k)];
        ud += double(xv) * u.w[size_t(n * D + k)];
        gf += xv * g.w[size_t(n * D + k)];
        uf += xv * u.w[size_t(n * D + k)];
      }
      act_d[size_t(n)] = gd / (1 + std::exp(-gd)) * ud;
      act_f[size_t(n)] = r16(r16(gf / (1 + std::exp(-gf))) * uf);
    }
    for (int64_t c = 0; c < D; c++) {
      double sd = dn.b[size_t(c)];
      float sf = dn.b[size_t(c)];
      for (int64_t n = 0; n < F; n++) {
        sd += act_d[size_t(n)] * dn.w[size_t(c * F + n)];
        sf += act_f[size_t(n)] * dn.w[size_t(c * F + n)];
      }
      ref[size_t(m * D + c)] = double(x0[size_t(m * D + c)]) + sd;
      naive[size_t(m * D + c)] = x0[size_t(m * D + c)] + sf;
    }
  }
  check_rule("swiglu_mlp_forward M=330 chunks of 128, last chunk padded in place", x.data(), naive.data(), ref.data(),
             ref.size(), 1e-5);
}

VR_TEST(swiglu_gemms_bf16_bad_input) {
  Rng rng(20);
  Weights g = make_weight(rng, 16, 8, false), u = make_weight(rng, 8, 8, false);
  std::vector<uint16_t> buf(16 * 80);
  expect_throw("swiglu_gemms_bf16 gate/up shapes differ",
               [&] { swiglu_gemms_bf16(buf.data(), buf.data(), buf.data(), g.L, u.L, 70); });
}

VR_TEST(gelu_erf_forward_bf16_vs_fp64) {
  Rng rng(40);
  std::vector<float> z = rng.vec(5000, -6, 6);
  z.insert(z.end(), {0.f, -0.f, 1e-30f, -1e-30f, 9.f, -9.f, 30.f, -30.f, 1e30f, -1e30f});
  std::vector<uint16_t> o16(z.size());
  gelu_erf_forward_bf16(o16.data(), z.data(), int64_t(z.size()));
  std::vector<float> ours(z.size()), naive(z.size());
  std::vector<double> ref(z.size());
  for (size_t i = 0; i < z.size(); i++) {
    ours[i] = bf16_to_f32(o16[i]);
    ref[i] = 0.5 * double(z[i]) * (1 + std::erf(double(z[i]) / std::sqrt(2.0)));
    naive[i] = r16(0.5f * z[i] * (1.f + std::erf(z[i] * 0.70710678f)));
  }
  // relative form of the rule: GELU(1e30) = 1e30, so compare errors scaled by max(1, |ref|)
  for (size_t i = 0; i < z.size(); i++) {
    const double s = std::max(1.0, std::fabs(ref[i]));
    ours[i] = float(ours[i] / s);
    naive[i] = float(naive[i] / s);
    ref[i] /= s;
  }
  check_rule("gelu_erf_forward_bf16 (errors relative to max(1, |gelu|))", ours.data(), naive.data(), ref.data(),
             ours.size(), 1e-6);
}

VR_TEST(linear_padded_rows_in_place) {
  padded_case(305, 72, 64, false, 30);
  padded_case(305, 72, 64, true, 31);
  padded_case(70, 33, 20, true, 32);
  padded_case(64, 16, 16, false, 33);
}

}  // namespace vr::test
