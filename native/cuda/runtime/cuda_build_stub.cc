// The CPU-only answers of device_info.h: without the CUDA backend there is no runtime to ask.
#ifndef VREFLECT_HAVE_CUDA
#include "cuda/runtime/device_info.h"

namespace vr::cuda_runtime {

RuntimeProbe probe_runtime(bool) { return RuntimeProbe{}; }
CudaBuild cuda_build() { return CudaBuild{}; }

}  // namespace vr::cuda_runtime
#endif
