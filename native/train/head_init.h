// Initialisation of a new BCM / DAC module, as upstream's models get it (method.md §6.1, decision A11: the HF
// re-initialisation): in_proj_weight xavier-uniform, in_proj_bias and out_proj.bias 0, out_proj.weight
// N(0, 0.02^2), LayerNorm weight 1 and bias 0, BCM queries 0.02 N(0, 1). Our own seeded generator (splitmix64 +
// Box-Muller), so runs are reproducible; the draws are not torch's.
#pragma once
#include <cstdint>

#include "model/bcm.h"

namespace vr {

class InitRng {
 public:
  explicit InitRng(uint64_t seed) : s_(seed) {}
  double uniform();  // [0, 1)
  double normal();

 private:
  uint64_t next();
  uint64_t s_;
  bool have_spare_ = false;
  double spare_ = 0;
};

void init_resampler(const ResamplerWeights& w, InitRng& rng);
void init_queries(Param& queries, InitRng& rng);

}  // namespace vr
