// vreflect_cuda_bench's memory-bound kernels (--kernels elementwise, or their names): planned at the 7B's training
// shapes (4096 tokens) and the decode ones, each as the 16-byte path ("vreflect-vec16") and the scalar kernels
// ("vreflect-scalar", VREFLECT_ELEMENTWISE=scalar); the figure is GB/s of the bytes the kernel must move.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "cuda/bench/bench_options.h"

namespace vr::bench {

// The kernel names (swiglu_fwd, ..., adamw), which "elementwise" in --kernels stands for.
const std::vector<std::string>& elementwise_kernels();
bool is_elementwise(const std::string& kernel);
// Appends the planned cases of the listed elementwise kernels (in elementwise_kernels() order).
void plan_elementwise(const Options& o, std::vector<Case>& out);
// The run of one case on device buffers from `buf(slot, bytes)` (random bf16 data, slots 0..7); the caller sets
// VREFLECT_ELEMENTWISE for the case's impl.
std::function<void()> elementwise_run(const Case& c, const std::function<void*(int, size_t)>& buf);

}  // namespace vr::bench
