#include "model/kv_cache.h"

#include <algorithm>

namespace vr {

void KVCache::reserve(int64_t extra) {
  if (len_ + extra <= cap_) return;
  int64_t cap = std::max<int64_t>(len_ + extra, std::max<int64_t>(256, cap_ * 2));
  for (size_t l = 0; l < k_.size(); l++) {
    k_[l].resize(size_t(cap * row_));
    v_[l].resize(size_t(cap * row_));
  }
  cap_ = cap;
}

}  // namespace vr
