// What this machine offers the CUDA backend, in plain C++ (no CUDA header needed to call it).
//
//   probe_driver()   dlopen("libcuda.so.1") and the driver API with our own declarations: works in every build,
//                    so a CPU-only build can say "GPU present but CUDA backend not built". Never throws.
//   probe_runtime()  (CUDA backend builds only, VREFLECT_HAVE_CUDA) the statically linked CUDA runtime: device
//                    properties, free memory, and whether this binary has a kernel image for each device (asked
//                    from the runtime with a probe kernel, so PTX JIT counts). Never throws.
//   cuda_build()     what was compiled: archs ("80,90"), nvcc and runtime versions.
//
// Errors are one line, meant for users ("no NVIDIA driver (libcuda.so.1 not found)", ...).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace vr::cuda_runtime {

struct GpuDevice {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int multiprocessors = 0;
  uint64_t memory_bytes = 0;
  int64_t free_bytes = -1;  // -1: not known (no context could be made)
  uint64_t smem_optin_bytes = 0;  // shared memory one block may opt in to (0: not known); the attention tiles fit it
  // probe_runtime only: whether a kernel of this binary can run on the device, and from what image.
  bool image_checked = false;
  bool image_ok = false;
  int binary_version = 0;  // e.g. 90: the SASS (or JIT-compiled PTX) arch the runtime picked
  int ptx_version = 0;
  std::string image_error;
};

struct DriverProbe {
  bool found = false;       // libcuda.so.1 loaded and cuInit succeeded
  std::string library;      // the name dlopen was given
  int driver_version = 0;   // cuDriverGetVersion: 1000 * major + 10 * minor (12080 = CUDA 12.8)
  std::vector<GpuDevice> devices;
  std::string error;        // empty when found and at least one device
};

struct RuntimeProbe {
  bool built = false;       // false in a CPU-only build (then nothing else is set)
  int runtime_version = 0;  // cudaRuntimeGetVersion of the linked cudart (13000 = 13.0)
  int driver_version = 0;   // cudaDriverGetVersion (0: no driver)
  std::vector<GpuDevice> devices;
  std::string error;
};

struct CudaBuild {
  bool built = false;
  std::string archs;         // "80,90" as CMAKE_CUDA_ARCHITECTURES, possibly with -real / -virtual suffixes
  std::string nvcc_version;  // "13.0.88"
};

// with_free_memory: also retain each device's primary context to read its free memory (costs ~0.1-1 s and some
// device memory for the context; doctor asks for it, a quick availability check does not).
DriverProbe probe_driver(bool with_free_memory);
RuntimeProbe probe_runtime(bool with_free_memory);
CudaBuild cuda_build();

// The emulator addon only (build/Release/vreflect_native_emu.node, native/cuda_emu/emu_probe.cc): the CPU emulator
// answering as a driver with one device named "CUDA emulator (CPU)", so `--device cuda` runs the whole CLI path
// in CI. A real build never defines it.
DriverProbe probe_emulator_driver(bool with_free_memory);

}  // namespace vr::cuda_runtime
