// A JSON object built field by field for vreflect_cuda_model_bench's report (numbers: null when not finite or
// negative, i.e. not measured).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "core/json_string.h"

namespace vr::bench {

// The current time in UTC, ISO 8601 ("2026-11-25T01:50:00Z"): the date the bench reports carry.
inline std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

class JsonObject {
 public:
  JsonObject& num(const std::string& k, double v, const char* fmt = "%.6g") {
    if (!std::isfinite(v) || v < 0) return raw(k, "null");
    char buf[64];
    std::snprintf(buf, sizeof buf, fmt, v);
    return raw(k, buf);
  }
  JsonObject& signed_num(const std::string& k, double v) {  // losses may be negative
    if (!std::isfinite(v)) return raw(k, "null");
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return raw(k, buf);
  }
  JsonObject& integer(const std::string& k, int64_t v) { return raw(k, std::to_string(v)); }
  JsonObject& str(const std::string& k, const std::string& v) { return raw(k, json_string(v)); }
  JsonObject& boolean(const std::string& k, bool v) { return raw(k, v ? "true" : "false"); }
  JsonObject& raw(const std::string& k, const std::string& json) {
    s_ += (s_.empty() ? "" : ",") + json_string(k) + ":" + json;
    return *this;
  }
  std::string str() const { return "{" + s_ + "}"; }

 private:
  std::string s_;
};

inline std::string json_array(const std::vector<std::string>& items) {
  std::string r;
  for (const std::string& i : items) r += (r.empty() ? "" : ",") + i;
  return "[" + r + "]";
}

inline std::string json_numbers(const std::vector<double>& v, const char* fmt = "%.6g") {
  std::vector<std::string> items;
  for (double x : v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, fmt, x);
    items.push_back(std::isfinite(x) ? buf : "null");
  }
  return json_array(items);
}

inline double median(std::vector<double> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace vr::bench
