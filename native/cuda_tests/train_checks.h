// What the CUDA training tests (test_train_*.cc) share: every trainable gradient of a ParamStore by name, and the
// flash rule with a floor relative to the reference tensor's scale (gradients of different tensors differ by
// orders of magnitude; an absolute floor would make the small ones vacuous).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "tests/harness.h"
#include "train/param_store.h"

namespace vr::test {

using GradMap = std::map<std::string, std::vector<float>>;

inline GradMap trainable_grads(const ParamStore& ps) {
  GradMap g;
  for (const auto& p : ps.all())
    if (p->trainable) g[p->name].assign(p->g, p->g + p->numel);
  return g;
}

// max|gpu - ref| <= 2 max|base - ref| + floor_rel * max|ref|.
inline void check_tensor(const std::string& what, const std::vector<float>& gpu, const std::vector<float>& base,
                         const std::vector<float>& ref, double floor_rel = 1e-3) {
  const std::vector<double> r = to_double(ref);
  check_rule(what, gpu.data(), base.data(), r.data(), r.size(), floor_rel * max_abs(r.data(), r.size()));
}

}  // namespace vr::test
