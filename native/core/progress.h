// Progress of a long native call (prefill: ViT blocks + LLM layers), readable from JS while the call runs on a
// worker thread. Plain atomics: the compute loop only increments a counter, JS polls it; nothing crosses N-API
// from the hot loop.
#pragma once
#include <atomic>
#include <cstdint>

namespace vr {

struct Progress {
  std::atomic<int64_t> done{0};
  std::atomic<int64_t> total{0};
  void reset(int64_t t) {
    done.store(0);
    total.store(t);
  }
  void step() { done.fetch_add(1, std::memory_order_relaxed); }
};

}  // namespace vr
