// Just enough JSON to read test fixtures (test/golden_train/cases.json): objects, arrays, numbers, strings
// (escapes other than \" and \\ are not needed there and are rejected), true / false / null. Errors are
// vr::Error naming the byte offset.
#pragma once
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace vr::test {

struct Json {
  enum Kind { Null, Bool, Num, Str, Arr, Obj } kind = Null;
  double num = 0;
  std::string str;
  std::vector<Json> arr;
  std::vector<std::pair<std::string, Json>> obj;

  const Json& operator[](const std::string& key) const {
    VR_CHECK(kind == Obj, "json: '", key, "' asked of a non-object");
    for (const auto& [k, v] : obj)
      if (k == key) return v;
    fail("json: no key '", key, "'");
  }
  const Json& operator[](size_t i) const {
    VR_CHECK(kind == Arr && i < arr.size(), "json: index ", i, " outside the array");
    return arr[i];
  }
  size_t size() const { return kind == Arr ? arr.size() : obj.size(); }
  double number() const {
    VR_CHECK(kind == Num, "json: not a number");
    return num;
  }
  std::vector<int32_t> ints() const {
    VR_CHECK(kind == Arr, "json: not an array");
    std::vector<int32_t> v;
    for (const Json& e : arr) v.push_back(int32_t(e.number()));
    return v;
  }
  std::vector<std::string> strings() const {
    VR_CHECK(kind == Arr, "json: not an array");
    std::vector<std::string> v;
    for (const Json& e : arr) v.push_back(e.str);
    return v;
  }

  static Json parse(const std::string& text) {
    size_t i = 0;
    Json j = value(text, i);
    skip(text, i);
    VR_CHECK(i == text.size(), "json: trailing bytes at ", i);
    return j;
  }
  static Json parse_file(const std::string& path) {
    std::ifstream f(path);
    VR_CHECK(f, "cannot open ", path);
    std::stringstream ss;
    ss << f.rdbuf();
    return parse(ss.str());
  }

 private:
  static void skip(const std::string& s, size_t& i) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) i++;
  }
  static std::string string(const std::string& s, size_t& i) {
    VR_CHECK(s[i] == '"', "json: expected a string at ", i);
    std::string out;
    for (i++; i < s.size() && s[i] != '"'; i++) {
      if (s[i] == '\\') {
        i++;
        VR_CHECK(i < s.size() && (s[i] == '"' || s[i] == '\\'), "json: unsupported escape at ", i);
      }
      out.push_back(s[i]);
    }
    VR_CHECK(i < s.size(), "json: unterminated string");
    i++;
    return out;
  }
  static Json value(const std::string& s, size_t& i) {
    skip(s, i);
    VR_CHECK(i < s.size(), "json: unexpected end");
    Json j;
    const char c = s[i];
    if (c == '{') {
      j.kind = Obj;
      i++;
      skip(s, i);
      while (s[i] != '}') {
        skip(s, i);
        std::string k = string(s, i);
        skip(s, i);
        VR_CHECK(s[i] == ':', "json: expected ':' at ", i);
        i++;
        j.obj.emplace_back(std::move(k), value(s, i));
        skip(s, i);
        VR_CHECK(s[i] == ',' || s[i] == '}', "json: expected ',' or '}' at ", i);
        if (s[i] == ',') i++;
      }
      i++;
    } else if (c == '[') {
      j.kind = Arr;
      i++;
      skip(s, i);
      while (s[i] != ']') {
        j.arr.push_back(value(s, i));
        skip(s, i);
        VR_CHECK(s[i] == ',' || s[i] == ']', "json: expected ',' or ']' at ", i);
        if (s[i] == ',') i++;
        skip(s, i);
      }
      i++;
    } else if (c == '"') {
      j.kind = Str;
      j.str = string(s, i);
    } else if (s.compare(i, 4, "true") == 0 || s.compare(i, 5, "false") == 0) {
      j.kind = Bool;
      j.num = c == 't';
      i += c == 't' ? 4 : 5;
    } else if (s.compare(i, 4, "null") == 0) {
      i += 4;
    } else {
      char* end = nullptr;
      j.kind = Num;
      j.num = std::strtod(s.c_str() + i, &end);
      VR_CHECK(end != s.c_str() + i, "json: bad value at ", i);
      i = size_t(end - s.c_str());
    }
    return j;
  }
};

}  // namespace vr::test
