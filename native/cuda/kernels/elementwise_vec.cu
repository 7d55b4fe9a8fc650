// The host side of the 16-byte elementwise paths (elementwise_vec.cuh): the VREFLECT_ELEMENTWISE switch and the
// count of calls that took a 16-byte path.
#include "cuda/kernels/elementwise_vec.cuh"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {
std::atomic<int64_t> g_vector_calls{0};
}  // namespace

// Read on every call (a getenv is ~100 ns against a launch's microseconds), so the tests and the bench can flip it
// with no cache to reset; an unknown value fails every call.
bool elementwise_vector_enabled() {
  const char* e = std::getenv("VREFLECT_ELEMENTWISE");
  if (!e || !*e || std::strcmp(e, "auto") == 0 || std::strcmp(e, "vector") == 0) return true;
  if (std::strcmp(e, "scalar") == 0) return false;
  vr::fail("VREFLECT_ELEMENTWISE=", e, " is not one of auto, vector, scalar");
}

int64_t elementwise_vector_calls() { return g_vector_calls.load(std::memory_order_relaxed); }

namespace vec {
void note_vector_call() { g_vector_calls.fetch_add(1, std::memory_order_relaxed); }
}  // namespace vec

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
