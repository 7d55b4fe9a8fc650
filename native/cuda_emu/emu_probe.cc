// The device probe of the emulator addon (vreflect_native_emu.node, VR_CUDA_EMULATED): probe_runtime(),
// cuda_build() and probe_emulator_driver() of cuda/runtime/device_info.h answering for the CPU emulator, so
// doctor and `--device cuda` see one usable device named "CUDA emulator (CPU)". Its memory is the
// VREFLECT_CUDA_EMU_MEMORY limit when set (the emulator's out-of-memory knob), else the host's physical memory.
// Only the emulator addon compiles this file; the real addon's probe is cuda/runtime (driver + static cudart).
#if defined(VR_CUDA_EMULATED)
#include <unistd.h>

#include <thread>

#include "cuda/model/cuda_runtime.h"
#include "cuda/runtime/device_info.h"

namespace vr::cuda_runtime {

namespace {

GpuDevice emulated_device(bool with_free_memory) {
  GpuDevice d;
  d.index = 0;
  d.name = "CUDA emulator (CPU)";
  // The kernels are written for sm_80 / sm_90; the emulator runs their sm_90 paths (bf16 loads, warp shuffles).
  d.cc_major = 9;
  d.cc_minor = 0;
  d.multiprocessors = int(std::thread::hardware_concurrency());
  d.smem_optin_bytes = cudaemu::max_dyn_smem_optin();  // 227 KiB, or CUDAEMU_MAX_DYN_SMEM_KIB's GPU
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
    d.memory_bytes = total_b;
    if (with_free_memory) d.free_bytes = int64_t(free_b);
  } else {
    cudaGetLastError();
    d.memory_bytes = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGE_SIZE));
  }
  d.image_checked = true;
  d.image_ok = true;
  d.binary_version = 90;
  return d;
}

}  // namespace

CudaBuild cuda_build() {
  CudaBuild b;
  b.built = true;
  b.archs = "90";
  b.nvcc_version = "CUDA emulator (CPU)";
  return b;
}

RuntimeProbe probe_runtime(bool with_free_memory) {
  RuntimeProbe p;
  p.built = true;
  p.devices.push_back(emulated_device(with_free_memory));
  return p;
}

DriverProbe probe_emulator_driver(bool with_free_memory) {
  DriverProbe d;
  d.found = true;
  d.library = "CUDA emulator (CPU)";
  d.devices.push_back(emulated_device(with_free_memory));
  return d;
}

}  // namespace vr::cuda_runtime
#endif
