// The CUDA runtime API for the model code: the real one under nvcc / a CUDA build, the CPU emulator's
// (native/cuda_emu) when the same source is compiled for the emulator tests (VR_CUDA_EMULATED).
#pragma once
#if defined(VR_CUDA_EMULATED)
#include "cuda_emu/emu_runtime.h"
#else
#include <cuda_runtime_api.h>
#endif
