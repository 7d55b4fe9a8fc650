// The CUDA backend's environment switches, read in one place: VREFLECT_ATTENTION, VREFLECT_ATTENTION_TILE_FWD /
// _BWD / _WGMMA / _WGMMA_BWD, VREFLECT_ELEMENTWISE, VREFLECT_GEMM, VREFLECT_GEMV. Each is an EnvSwitch: read at its
// first use and kept (a kernel launch must not scan the environment); a value outside its allowed spellings is a
// one-line vr::Error naming them all, raised at every use until the variable is fixed (nothing is kept then).
// env_switches_changed() is the one reset: every switch reads its variable again at its next use (the tests and
// the bench, which setenv in-process). Variables read when a model session is built (VREFLECT_CUDA_GRAPHS, the
// split-KV counts) need no reset and are not here.
// Plain C++ (no CUDA header): host code of the .cu files and of native/cuda/gemm includes it.
#pragma once
#include <atomic>
#include <string>
#include <vector>

#include "cuda/kernels/cuda_kernels.h"  // VR_CUDA_ABI, env_switches_changed

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

class EnvSwitch {
 public:
  // `values`: the allowed spellings, values[0] the default (unset or empty reads as values[0]). Construct at
  // namespace scope (static storage): the switch registers itself with env_switches_changed and is never destroyed
  // before the program ends.
  EnvSwitch(const char* var, std::vector<std::string> values);
  EnvSwitch(const EnvSwitch&) = delete;
  EnvSwitch& operator=(const EnvSwitch&) = delete;

  int index();  // the setting as an index into values (read now if not yet read; throws on a bad value)
  const std::string& value() { return values_[size_t(index())]; }
  const char* var() const { return var_; }
  const std::vector<std::string>& values() const { return values_; }
  void forget() { cached_.store(-1, std::memory_order_relaxed); }  // env_switches_changed: read again next time

 private:
  const char* var_;
  std::vector<std::string> values_;
  std::atomic<int> cached_{-1};  // -1: not read yet
};

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
