#include "model/dac.h"

#include <map>

#include "core/error.h"

namespace vr {

DynamicCompression::DynamicCompression(ParamStore& ps, const std::string& prefix, int64_t D, bool trainable)
    : w_(add_resampler_params(ps, prefix, D, trainable)), ca_(ps, w_, D, resampler_heads(D)) {}

void DynamicCompression::forward(const float* Hq, int64_t nb, int nq, const float* V, const int32_t* cu_sample,
                                 const int32_t* box_sample, float* Z, CrossAttnCache& cache) const {
  const int64_t D = ca_.dim();
  CrossAttnInput in;
  in.nb = nb;
  in.nq = nq;
  in.queries = Hq;
  std::map<int32_t, int32_t> set_of_sample;  // only the samples that own boxes get a key set
  for (int64_t b = 0; b < nb; b++) {
    const int32_t s = box_sample[b];
    auto it = set_of_sample.find(s);
    if (it == set_of_sample.end()) {
      const int64_t n = int64_t(cu_sample[s + 1]) - cu_sample[s];
      VR_CHECK(n > 0, "DAC: sample ", s, " owns box ", b, " but has no visual tokens");
      it = set_of_sample.emplace(s, int32_t(in.sets.size())).first;
      in.sets.push_back(KeySet{V + int64_t(cu_sample[s]) * D, n});
    }
    in.set_of.push_back(it->second);
  }
  ca_.forward(in, Z, cache, /*want_attn=*/true);
  cache.in.queries = nullptr;  // backward reads the copy in cache.q_in
}

void DynamicCompression::backward(const CrossAttnCache& cache, const float* dZ, const float* dattn,
                                  float* dHq) const {
  ca_.backward(cache, dZ, dattn, dHq);
}

}  // namespace vr
