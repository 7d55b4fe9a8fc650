#include "cpu/op_profile.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <mutex>
#include <vector>

namespace vr::prof {

namespace {
struct Row {
  double ms = 0, cpu_ms = 0, flop = 0;
  int64_t calls = 0;
};
std::mutex g_mu;
std::map<std::string, Row>& table() {
  static std::map<std::string, Row> t;
  return t;
}
}  // namespace

bool enabled() {
  static const bool on = [] {
    const char* e = std::getenv("VREFLECT_PROFILE");
    return e && *e && std::string(e) != "0";
  }();
  return on;
}

double process_cpu_ms() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

void add(const std::string& label, double ms, double cpu_ms, double flop) {
  std::lock_guard<std::mutex> lock(g_mu);
  Row& r = table()[label];
  r.ms += ms;
  r.cpu_ms += cpu_ms;
  r.flop += flop;
  r.calls++;
}

void reset() {
  std::lock_guard<std::mutex> lock(g_mu);
  table().clear();
}

std::string report(const std::string& title) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (table().empty()) return "";
  std::vector<std::pair<std::string, Row>> rows(table().begin(), table().end());
  std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second.ms > b.second.ms; });
  double total = 0, total_cpu = 0, flop = 0;
  for (auto& r : rows)
    if (r.first[0] != '~') total += r.second.ms, total_cpu += r.second.cpu_ms, flop += r.second.flop;  // '~' rows nest
  std::string s = "profile: " + title + "\n";
  char buf[256];
  for (auto& r : rows) {
    std::snprintf(buf, sizeof buf, "  %-40s %5lld calls %9.2f ms %9.2f cpu-ms %5.1f%%", r.first.c_str(),
                  (long long)r.second.calls, r.second.ms, r.second.cpu_ms, 100 * r.second.ms / total);
    s += buf;
    if (r.second.flop > 0) {
      std::snprintf(buf, sizeof buf, " %7.0f GFLOP/s", r.second.flop / (r.second.ms * 1e-3) / 1e9);
      s += buf;
    }
    s += "\n";
  }
  std::snprintf(buf, sizeof buf, "  %-40s %15.2f ms %9.2f cpu-ms        %7.0f GFLOP/s\n", "total (profiled ops)",
                total, total_cpu, flop / (total * 1e-3) / 1e9);
  return s + buf;
}

}  // namespace vr::prof
