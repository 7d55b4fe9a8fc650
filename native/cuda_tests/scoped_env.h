// Sets (or unsets, value null) one environment variable for a scope and restores it after. `reread` runs after
// each change, for the switches the code reads once and caches (cuda::env_switches_changed: every VREFLECT_*
// switch of the CUDA backend); variables read when a model is built need none.
#pragma once
#include <cstdlib>
#include <string>

namespace vr::test {

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value, void (*reread)() = nullptr) : name_(name), reread_(reread) {
    const char* o = std::getenv(name);
    had_ = o != nullptr;
    if (had_) old_ = o;
    set(value);
  }
  ~ScopedEnv() { set(had_ ? old_.c_str() : nullptr); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  void set(const char* value) {
    if (value)
      setenv(name_.c_str(), value, 1);
    else
      unsetenv(name_.c_str());
    if (reread_) reread_();
  }
  std::string name_, old_;
  bool had_ = false;
  void (*reread_)() = nullptr;
};

}  // namespace vr::test
