// linear_forward / linear_backward against fp64 references, F32 and BF16 weights, odd shapes, bias and
// accumulate, and the decode (M <= 4) path.
#include <cstdio>
#include <string>

#include "core/dtype.h"
#include "cpu/cpu_ops.h"
#include "ops/linear.h"
#include "tests/harness.h"
#include "tests/reference.h"

namespace vr::test {

namespace {

struct Shape {
  int64_t M, N, K;
};

std::vector<float> bf16_round(const std::vector<float>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); i++) r[i] = bf16_to_f32(f32_to_bf16(v[i]));
  return r;
}

const char* g_path_name = "auto";

// Runs fn once per GEMM path this build and CPU have (auto, oneDNN only, built-in, GEMV), labelled.
template <class F>
void for_each_path(F fn) {
  struct P {
    cpu::GemmPath path;
    const char* name;
  };
  const P paths[] = {{cpu::GemmPath::Auto, "auto"},
                     {cpu::GemmPath::OneDnn, "onednn"},
                     {cpu::GemmPath::Builtin, "builtin"},
                     {cpu::GemmPath::Gemv, "gemv"}};
  for (const P& p : paths) {
    cpu::set_gemm_path(p.path);
    g_path_name = p.name;
    fn();
  }
  cpu::set_gemm_path(cpu::GemmPath::Auto);
  g_path_name = "auto";
}

std::string label(const char* kind, const Shape& s, bool bias, bool acc) {
  char b[160];
  std::snprintf(b, sizeof b, "[%s] %s M=%lld N=%lld K=%lld%s%s", g_path_name, kind, (long long)s.M, (long long)s.N, (long long)s.K,
                bias ? " +bias" : "", acc ? " +acc" : "");
  return b;
}

void forward_case(const Shape& s, bool bf16, bool bias, bool acc, uint64_t seed, bool pack = false,
                  bool bf16_input = false) {
  Rng rng(seed);
  const auto x = rng.vec(static_cast<size_t>(s.M * s.K));
  auto w = rng.vec(static_cast<size_t>(s.N * s.K));
  const auto b = rng.vec(static_cast<size_t>(s.N));
  const auto out0 = rng.vec(static_cast<size_t>(s.M * s.N));
  std::vector<uint16_t> w16(w.size());
  if (bf16) {
    for (size_t i = 0; i < w.size(); i++) w16[i] = f32_to_bf16(w[i]);
    w = bf16_round(w);  // the weights *are* bf16 values; references use them exactly
  }
  Linear L;
  L.dtype = bf16 ? DType::BF16 : DType::F32;
  L.N = s.N;
  L.K = s.K;
  L.w = bf16 ? static_cast<const void*>(w16.data()) : static_cast<const void*>(w.data());
  L.b = bias ? b.data() : nullptr;
  if (pack && !linear_prepack(L)) return;  // nothing to pack for in this build
  std::vector<float> ours = out0;
  if (bf16_input) {  // the caller rounded the input once (round_to_bf16), the GEMM takes the bits
    std::vector<uint16_t> x16(x.size());
    round_to_bf16(x16.data(), x.data(), int64_t(x.size()));
    linear_forward_bf16in(ours.data(), x16.data(), L, s.M, acc);
  } else {
    linear_forward(ours.data(), x.data(), L, s.M, acc);
  }

  std::vector<double> ref = to_double(out0);
  const std::vector<double> bd = to_double(b);
  ref::linear<double>(ref, to_double(x), to_double(w), bias ? &bd : nullptr, s.M, s.N, s.K, acc);
  const std::vector<float> xn = bf16 ? bf16_round(x) : x;
  std::vector<float> naive = out0;
  ref::linear<float>(naive, xn, w, bias ? &b : nullptr, s.M, s.N, s.K, acc);
  const std::string name = label(bf16 ? (pack ? (bf16_input ? "linear bf16 packed, bf16 input" : "linear bf16 packed")
                                               : (bf16_input ? "linear bf16, bf16 input" : "linear bf16"))
                                      : "linear f32",
                                 s, bias, acc);
  check_rule(name, ours.data(), naive.data(), ref.data(), ours.size(), 1e-5);
  if (bf16) {
    // Rounding contract: against fp64 on the bf16-rounded inputs only accumulation error may remain.
    std::vector<double> refr = to_double(out0);
    ref::linear<double>(refr, to_double(xn), to_double(w), bias ? &bd : nullptr, s.M, s.N, s.K, acc);
    check_rule(name + " (inputs rounded to bf16)", ours.data(), naive.data(), refr.data(), ours.size(), 1e-5);
  }
}

void backward_case(const Shape& s, bool bf16, uint64_t seed, bool all = true) {
  Rng rng(seed);
  const auto x = rng.vec(static_cast<size_t>(s.M * s.K));
  auto w = rng.vec(static_cast<size_t>(s.N * s.K));
  const auto dy = rng.vec(static_cast<size_t>(s.M * s.N));
  const auto dx0 = rng.vec(static_cast<size_t>(s.M * s.K)), dw0 = rng.vec(static_cast<size_t>(s.N * s.K)), db0 = rng.vec(static_cast<size_t>(s.N));
  std::vector<uint16_t> w16(w.size());
  if (bf16) {
    for (size_t i = 0; i < w.size(); i++) w16[i] = f32_to_bf16(w[i]);
    w = bf16_round(w);
  }
  Linear L;
  L.dtype = bf16 ? DType::BF16 : DType::F32;
  L.N = s.N;
  L.K = s.K;
  L.w = bf16 ? static_cast<const void*>(w16.data()) : static_cast<const void*>(w.data());
  std::vector<float> dx = dx0, dw = dw0, db = db0;
  linear_backward(dx.data(), all ? dw.data() : nullptr, all ? db.data() : nullptr, dy.data(), x.data(), L, s.M);

  std::vector<double> rdx = to_double(dx0), rdw = to_double(dw0), rdb = to_double(db0);
  ref::linear_backward<double>(rdx, rdw, rdb, to_double(dy), to_double(x), to_double(w), s.M, s.N, s.K);
  // Same-precision naive: fp32, with dout and inp rounded to bf16 for BF16 weights (the documented contract).
  const std::vector<float> xn = bf16 ? bf16_round(x) : x, dyn = bf16 ? bf16_round(dy) : dy;
  std::vector<float> ndx = dx0, ndw = dw0, ndb = db0;
  ref::linear_backward<float>(ndx, ndw, ndb, dyn, xn, w, s.M, s.N, s.K);
  const std::string name = label(bf16 ? "linear_backward bf16" : "linear_backward f32", s, false, false);
  check_rule(name + " dinp", dx.data(), ndx.data(), rdx.data(), dx.size(), 1e-5);
  if (all) {
    check_rule(name + " dweight", dw.data(), ndw.data(), rdw.data(), dw.size(), 1e-5);
    // dbias is an fp32 column sum of the unrounded dout in both precisions.
    std::vector<float> ndb32 = db0;
    for (int64_t n = 0; n < s.N; n++)
      for (int64_t m = 0; m < s.M; m++) ndb32[size_t(n)] += dy[size_t(m * s.N + n)];
    check_rule(name + " dbias", db.data(), ndb32.data(), rdb.data(), db.size(), 1e-5);
  } else {
    check_true(name + " null dweight/dbias leave them untouched", dw == dw0 && db == db0);
  }
}

}  // namespace

VR_TEST(linear_forward_shapes) {
  const Shape shapes[] = {{1, 33, 65}, {2, 33, 65}, {3, 40, 64}, {4, 17, 96}, {5, 33, 65}, {7, 33, 65},
                          {1, 256, 1000}, {16, 64, 31}, {33, 130, 257}, {64, 96, 200},
                          {69, 96, 200}, {71, 33, 65}};  // M >= 64, not a multiple of 8: padded rows (linear.cc)
  for_each_path([&] {
    uint64_t seed = 1;
    for (const Shape& s : shapes)
      for (int bf16 = 0; bf16 < 2; bf16++)
        for (int variant = 0; variant < 3; variant++)  // plain, +bias, +bias +accumulate
          forward_case(s, bf16, variant >= 1, variant == 2, seed++);
    forward_case({7, 33, 65}, false, false, true, 99);
    forward_case({1, 33, 65}, true, false, true, 100);
  });
}

// Packed weights (inference): N not a multiple of 64 and K not a multiple of 32 exercise the zero padding; M <= 4
// runs the packed GEMV, larger M oneDNN on the packed layout.
VR_TEST(linear_forward_packed) {
  const Shape shapes[] = {{1, 33, 65}, {2, 100, 37}, {3, 64, 32}, {4, 130, 257}, {1, 256, 1000},
                          {5, 33, 65},  {16, 64, 31}, {33, 130, 257}, {64, 96, 200}, {69, 96, 200}, {71, 33, 65}};
  for_each_path([&] {
    uint64_t seed = 200;
    for (const Shape& s : shapes)
      for (int variant = 0; variant < 3; variant++) forward_case(s, true, variant >= 1, variant == 2, seed++, true);
    for (const Shape& s : shapes) {  // bf16 inputs, packed and plain
      forward_case(s, true, true, true, seed++, true, true);
      forward_case(s, true, true, false, seed++, false, true);
    }
  });
  Linear L;  // F32 weights are never packed
  std::vector<float> w(12);
  L.dtype = DType::F32;
  L.N = 3;
  L.K = 4;
  L.w = w.data();
  check_true("linear_prepack leaves F32 weights alone", !linear_prepack(L) && !L.packed);
  std::vector<uint16_t> x16(4);
  std::vector<float> y(3);
  expect_throw("linear_forward_bf16in with F32 weights", [&] { linear_forward_bf16in(y.data(), x16.data(), L, 1); });
}

VR_TEST(linear_backward_shapes) {
  const Shape shapes[] = {{1, 33, 65}, {7, 33, 65}, {20, 48, 37}, {64, 96, 130}};
  for_each_path([&] {
    uint64_t seed = 50;
    for (const Shape& s : shapes)
      for (int bf16 = 0; bf16 < 2; bf16++) backward_case(s, bf16, seed++);
    backward_case({7, 33, 65}, false, 77, false);
    backward_case({7, 33, 65}, true, 78, false);
  });
}

VR_TEST(linear_bad_input) {
  std::vector<float> w(12), x(4), y(3);
  Linear L;
  L.dtype = DType::I32;
  L.N = 3;
  L.K = 4;
  L.w = w.data();
  expect_throw("linear I32 weights", [&] { linear_forward(y.data(), x.data(), L, 1); });
  L.dtype = DType::F32;
  L.w = nullptr;
  expect_throw("linear null weights", [&] { linear_forward(y.data(), x.data(), L, 1); });
  L.w = w.data();
  expect_throw("linear negative M", [&] { linear_forward(y.data(), x.data(), L, -1); });
}

}  // namespace vr::test
