#include "train/step_profile.h"

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

namespace vr {

namespace {

struct Row {
  std::string phase;
  double wall = 0, cpu = 0, sys = 0;
  long calls = 0;
};
std::mutex g_mu;
std::vector<Row> g_rows;  // in first-seen order

}  // namespace

bool step_profile_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("VREFLECT_TRAIN_PROFILE");
    return e && *e && std::string(e) != "0";
  }();
  return on;
}

double process_cpu_s(double* sys_s) {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  const double u = double(r.ru_utime.tv_sec) + 1e-6 * double(r.ru_utime.tv_usec);
  const double s = double(r.ru_stime.tv_sec) + 1e-6 * double(r.ru_stime.tv_usec);
  if (sys_s) *sys_s = s;
  return u + s;
}

void step_profile_add(const char* phase, double wall_s, double cpu_s, double sys_s) {
  std::lock_guard<std::mutex> lock(g_mu);
  for (Row& r : g_rows)
    if (r.phase == phase) {
      r.wall += wall_s, r.cpu += cpu_s, r.sys += sys_s, r.calls++;
      return;
    }
  g_rows.push_back(Row{phase, wall_s, cpu_s, sys_s, 1});
}

void step_profile_report(const char* title) {
  if (!step_profile_enabled()) return;
  std::lock_guard<std::mutex> lock(g_mu);
  std::fprintf(stderr, "[profile] %s\n[profile] %-28s %6s %10s %10s %10s\n", title, "phase", "calls", "wall ms",
               "cpu ms", "sys ms");
  for (const Row& r : g_rows)
    std::fprintf(stderr, "[profile] %-28s %6ld %10.1f %10.1f %10.1f\n", r.phase.c_str(), r.calls, 1e3 * r.wall,
                 1e3 * r.cpu, 1e3 * r.sys);
  g_rows.clear();
}

}  // namespace vr
