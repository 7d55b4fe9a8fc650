// Scratch buffers that only grow: a buffer kept from call to call keeps its pages mapped, so a repeated forward
// pass (eval prefills, training micro-batches) does not pay first-touch page faults again. Contents are left as
// they are: callers write every element they read.
#pragma once
#include <cstdint>
#include <vector>

namespace vr {

template <class T>
T* grow(std::vector<T>& v, int64_t n) {
  if (int64_t(v.size()) < n) v.resize(size_t(n));
  return v.data();
}

}  // namespace vr
