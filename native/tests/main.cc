// Native kernel tests: runs every registered test, or those whose name contains one of the arguments, minus those
// whose name contains an `--exclude=SUBSTRING` argument; prints one line per check and exits 1 when any check
// failed (or a test threw).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <vector>

#include "core/parallel.h"
#include "ops/linear.h"
#include "tests/harness.h"

namespace vr::test {

namespace {
int g_failed = 0, g_passed = 0;
}

std::vector<TestCase>& registry() {
  static std::vector<TestCase> r;
  return r;
}

bool report(bool ok, const std::string& what) {
  std::printf("%s  %s\n", ok ? "PASS" : "FAIL", what.c_str());
  (ok ? g_passed : g_failed)++;
  return ok;
}

bool check_rule(const std::string& what, const float* ours, const float* naive, const double* ref, size_t n,
                double floor_abs) {
  const double e = max_abs_diff(ours, ref, n), en = max_abs_diff(naive, ref, n);
  const double bound = 2 * en + floor_abs;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s: err %.3g naive %.3g bound %.3g (max|ref| %.3g)", what.c_str(), e, en, bound,
                max_abs(ref, n));
  return report(e <= bound, buf);
}

bool check_close(const std::string& what, const double* got, const double* ref, size_t n, double atol,
                 double rtol) {
  double worst = 0;
  bool ok = true;
  for (size_t i = 0; i < n; i++) {
    const double d = std::fabs(got[i] - ref[i]);
    const double tol = atol + rtol * std::fabs(ref[i]);
    if (!(d <= tol)) ok = false;
    if (!(d <= worst)) worst = d;
  }
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s: max err %.3g (atol %.3g rtol %.3g)", what.c_str(), worst, atol, rtol);
  return report(ok, buf);
}

bool check_true(const std::string& what, bool cond) { return report(cond, what); }

}  // namespace vr::test

int main(int argc, char** argv) {
  using namespace vr::test;
  std::vector<const char*> filters, excludes;
  for (int i = 1; i < argc; i++) {
    if (std::strncmp(argv[i], "--exclude=", 10) == 0) excludes.push_back(argv[i] + 10);
    else filters.push_back(argv[i]);
  }
  auto selected = [&](const char* name) {
    for (const char* x : excludes)
      if (std::strstr(name, x)) return false;
    if (filters.empty()) return true;
    for (const char* f : filters)
      if (std::strstr(name, f)) return true;
    return false;
  };
  const vr::CpuFeatures& f = vr::cpu_features();
  std::printf("cpu: %s | avx2 %d avx512f %d avx512_bf16 %d amx_bf16 %d | threads %d\n", f.model.c_str(), f.avx2,
              f.avx512f, f.avx512_bf16, f.amx_bf16, vr::num_threads());
  std::printf("gemm: f32 %s | bf16 %s\n", vr::linear_backend_name(vr::DType::F32),
              vr::linear_backend_name(vr::DType::BF16));
  for (const TestCase& t : registry()) {
    if (!selected(t.name)) continue;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      t.fn();
    } catch (const std::exception& e) {
      report(false, std::string(t.name) + ": threw " + e.what());
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("----  %s (%.0f ms)\n", t.name, ms);
  }
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}

namespace vr::test {
bool check_fd(const std::string& what, double fd, double analytic, double rtol) {
  const double err = std::fabs(fd - analytic), tol = rtol * std::max(1.0, std::fabs(analytic));
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s: %.10g vs %.10g (err %.3g, tol %.3g)", what.c_str(), fd,
                analytic, err, tol);
  return report(err <= tol, buf);
}
}  // namespace vr::test
