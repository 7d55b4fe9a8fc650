// Minimal test harness for the native kernel tests: registered test functions, one printed line per check,
// and the flash-attention tolerance rule.
//
// Rule: err(ours) <= 2 * err(naive) + floor, where errors are max-abs differences from an fp64 reference and
// "naive" is a straightforward implementation in the kernel's own precision (fp32 loops; for bf16 GEMMs a loop
// over bf16-rounded inputs with fp32 accumulation). The floor (absolute) covers cases where the naive code is
// accidentally almost exact.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace vr::test {

struct TestCase {
  const char* name;
  std::function<void()> fn;
};
std::vector<TestCase>& registry();
struct Register {
  Register(const char* name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};
#define VR_TEST(name)                                                  \
  static void name();                                                  \
  static ::vr::test::Register vr_test_reg_##name(#name, name);         \
  static void name()

// Records a pass/fail line; returns the result.
bool report(bool ok, const std::string& what);

// max |a - b| over n elements (a, b of any float types).
template <class A, class B>
double max_abs_diff(const A* a, const B* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    const double d = std::fabs(double(a[i]) - double(b[i]));
    if (!(d <= m)) m = d;  // NaN propagates as a failure
  }
  return m;
}
template <class A>
double max_abs(const A* a, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = std::max(m, std::fabs(double(a[i])));
  return m;
}

// The tolerance rule for one output buffer: prints err(ours), err(naive) and the bound.
bool check_rule(const std::string& what, const float* ours, const float* naive, const double* ref, size_t n,
                double floor_abs);
// Plain check against a reference with an absolute tolerance (for exact or fp64-vs-fp64 comparisons).
bool check_close(const std::string& what, const double* got, const double* ref, size_t n, double atol,
                 double rtol = 0);
bool check_true(const std::string& what, bool cond);

// Deterministic uniform random numbers in [lo, hi).
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  double uniform(double lo = -1, double hi = 1) { return lo + (hi - lo) * double(next() >> 11) * (1.0 / 9007199254740992.0); }
  std::vector<float> vec(size_t n, double lo = -1, double hi = 1) {
    std::vector<float> v(n);
    for (auto& x : v) x = float(uniform(lo, hi));
    return v;
  }
};

template <class T>
std::vector<double> to_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

}  // namespace vr::test

namespace vr::test {

// Checks that fn throws vr::Error (a one-line message) and prints the message.
template <class F>
bool expect_throw(const std::string& what, F fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return report(true, what + " throws: " + e.what());
  }
  return report(false, what + " did not throw");
}

// Directional derivative of L(x) = sum(dout * f(x)) by central differences (fp64), to validate the fp64
// reference gradients themselves: compare with sum(grad * u).
template <class F>
double fd_directional(F f, std::vector<double> x, const std::vector<double>& u, const std::vector<double>& dout,
                      double h = 1e-5) {
  auto loss = [&](double sgn) {
    std::vector<double> xs = x;
    for (size_t i = 0; i < xs.size(); i++) xs[i] += sgn * h * u[i];
    const std::vector<double> y = f(xs);
    double l = 0;
    for (size_t i = 0; i < y.size(); i++) l += dout[i] * y[i];
    return l;
  };
  return (loss(1) - loss(-1)) / (2 * h);
}
inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); i++) s += a[i] * b[i];
  return s;
}
// Reports |fd - analytic| <= rtol * max(1, |analytic|) (any two scalars that must agree).
bool check_fd(const std::string& what, double fd, double analytic, double rtol = 1e-6);

}  // namespace vr::test
