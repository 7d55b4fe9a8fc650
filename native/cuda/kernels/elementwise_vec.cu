// The host side of the 16-byte elementwise paths (elementwise_vec.cuh): the VREFLECT_ELEMENTWISE switch and the
// count of calls that took a 16-byte path.
#include "cuda/kernels/elementwise_vec.cuh"

#include <atomic>

#include "cuda/kernels/env_switch.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {
std::atomic<int64_t> g_vector_calls{0};
// VREFLECT_ELEMENTWISE, read once (env_switches_changed reads it again): auto and vector take the 16-byte paths.
EnvSwitch g_switch{"VREFLECT_ELEMENTWISE", {"auto", "vector", "scalar"}};
}  // namespace

bool elementwise_vector_enabled() { return g_switch.index() != 2; }  // values[2]: "scalar"

int64_t elementwise_vector_calls() { return g_vector_calls.load(std::memory_order_relaxed); }

namespace vec {
void note_vector_call() { g_vector_calls.fetch_add(1, std::memory_order_relaxed); }
}  // namespace vec

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
