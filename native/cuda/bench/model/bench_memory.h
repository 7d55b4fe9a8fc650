// Device memory as cudaMemGetInfo sees it, polled around the bench's calls: the peak of (total - free) over the
// polls, which includes the CUDA context and everything the allocator holds (not transient buffers freed inside
// a call between two polls; the arenas the calls report are printed beside it). Under the emulator only with
// VREFLECT_CUDA_EMU_MEMORY=<bytes> (its "device" is host memory); otherwise every figure is -1 (null in JSON).
#pragma once
#include <algorithm>
#include <cstdint>

namespace vr::bench {

class MemoryPoll {
 public:
  MemoryPoll();
  void poll();  // records total - free now
  int64_t total() const { return total_; }
  int64_t baseline() const { return baseline_; }  // used at construction (another process, the context)
  int64_t peak() const { return peak_; }
  int64_t last() const { return last_; }

 private:
  int64_t total_ = -1, baseline_ = -1, peak_ = -1, last_ = -1;
};

}  // namespace vr::bench
