// Runs the planned cases of vreflect_cuda_bench on the GPU: device buffers with random bf16 data (reused and
// grown between cases), cudaEvent timing around each run, median of the timed runs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/bench/bench_options.h"

namespace vr::bench {

struct DeviceInfo {
  std::string name, cc, driver;  // cc "9.0"; driver: the CUDA driver API version, "13.0"
  uint64_t memory_bytes = 0;
  uint64_t smem_optin_bytes = 0;  // shared memory one block may opt in to: what the attention tile auto fits
};

struct Measurement {
  double ms = -1;  // median milliseconds of one run; < 0 when it did not run
  int reps = 0;
  std::string error;  // why it did not run (one line)
  std::string impl;   // what ran when only the run knows (attention: vreflect-tc / vreflect-scalar); else Case::impl
  std::string tile;   // attention on tensor cores: the tile variant that ran
};

class Runner {
 public:
  Runner();  // throws vr::Error when there is no usable GPU
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;
  const DeviceInfo& device() const { return dev_; }
  Measurement run(const Case& c, const Options& o);

 private:
  struct Slot {
    void* p = nullptr;
    size_t bytes = 0;
  };
  // Device memory of at least `bytes` in slot i, filled with random bf16 values in [-1, 1) when (re)allocated.
  void* buffer(int i, size_t bytes);
  void* zeros(int i, size_t bytes);  // as buffer(), then cleared
  DeviceInfo dev_;
  std::vector<Slot> slots_;
};

}  // namespace vr::bench
