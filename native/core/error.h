// Errors: every check in the engine throws vr::Error with a one-line message naming the cause.
// The N-API layer (native/addon) catches it and throws a JS Error, so bad input never crashes node.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace vr {

struct Error : std::runtime_error {
  explicit Error(const std::string& m) : std::runtime_error(m) {}
};

namespace detail {
inline void cat(std::ostringstream&) {}
template <class T, class... R>
void cat(std::ostringstream& o, const T& t, const R&... r) { o << t; cat(o, r...); }
}  // namespace detail

template <class... A>
[[noreturn]] void fail(const A&... a) {
  std::ostringstream o;
  detail::cat(o, a...);
  throw Error(o.str());
}

}  // namespace vr

// VR_CHECK(cond, "message parts", value, ...): throws vr::Error when cond is false.
#define VR_CHECK(cond, ...) \
  do { if (!(cond)) ::vr::fail(__VA_ARGS__); } while (0)
