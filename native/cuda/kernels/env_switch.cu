// EnvSwitch (env_switch.h): the CUDA backend's environment switches, each read once, and their one reset.
// Host code only (a .cu so that both builds, nvcc's and the emulator's, compile it with the kernels).
#include "cuda/kernels/env_switch.h"

#include <cstdlib>
#include <mutex>

#include "core/error.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {
// Every EnvSwitch constructed so far (function-local statics: safe whichever translation unit's statics run first).
std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::vector<EnvSwitch*>& registry() {
  static std::vector<EnvSwitch*> r;
  return r;
}
}  // namespace

EnvSwitch::EnvSwitch(const char* var, std::vector<std::string> values) : var_(var), values_(std::move(values)) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry().push_back(this);
}

int EnvSwitch::index() {
  const int cached = cached_.load(std::memory_order_relaxed);
  if (cached >= 0) return cached;
  const char* e = std::getenv(var_);
  const std::string v = e ? e : "";
  int idx = v.empty() ? 0 : -1;
  for (size_t i = 0; i < values_.size() && idx < 0; i++)
    if (values_[i] == v) idx = int(i);
  if (idx < 0) {
    std::string all;
    for (const std::string& x : values_) all += (all.empty() ? "" : ", ") + x;
    fail(var_, "=", v, " is not one of ", all);  // stays unread: every use says so
  }
  cached_.store(idx, std::memory_order_relaxed);
  return idx;
}

void env_switches_changed() {
  std::lock_guard<std::mutex> lock(registry_mutex());
  for (EnvSwitch* s : registry()) s->forget();
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
