#include "cuda/bench/model/bench_memory.h"

#include "cuda/model/cuda_runtime.h"

namespace vr::bench {

MemoryPoll::MemoryPoll() {
  poll();
  baseline_ = last_;
}

void MemoryPoll::poll() {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
    cudaGetLastError();
    return;
  }
  total_ = int64_t(total_b);
  last_ = int64_t(total_b - free_b);
  peak_ = std::max(peak_, last_);
}

}  // namespace vr::bench
