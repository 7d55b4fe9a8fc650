// A string as a JSON string literal, for the tools that print JSON by hand (vreflect_cuda_probe,
// vreflect_cuda_bench, cublaslt_info_json): quotes and backslashes escaped, control characters as \u00XX.
#pragma once
#include <cstdio>
#include <string>

namespace vr {

inline std::string json_string(const std::string& s) {
  std::string r = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      r += '\\';
      r += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      r += buf;
    } else {
      r += c;
    }
  }
  return r + "\"";
}

}  // namespace vr
