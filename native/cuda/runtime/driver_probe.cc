// probe_driver(): the NVIDIA driver through dlopen, so it works in a CPU-only build and without a driver. The few
// driver-API entry points are declared here ourselves (the CUDA driver API's C ABI: every function returns a
// CUresult int, a device is an int ordinal); their values are those of cuda.h's CUresult / CUdevice_attribute.
#include <dlfcn.h>

#include <string>

#include "cuda/runtime/device_info.h"

namespace vr::cuda_runtime {

namespace {

using CUresult = int;
using CUdevice = int;
using CUcontext = void*;

constexpr CUresult kSuccess = 0;
constexpr CUresult kErrorNoDevice = 100;          // CUDA_ERROR_NO_DEVICE
constexpr CUresult kErrorInsufficientDriver = 35; // CUDA_ERROR_INSUFFICIENT_DRIVER
constexpr int kAttrMultiprocessors = 16;          // CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT
constexpr int kAttrCcMajor = 75;                  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
constexpr int kAttrCcMinor = 76;                  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR
constexpr int kAttrSmemOptin = 97;                 // CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN

struct DriverApi {
  CUresult (*cuInit)(unsigned) = nullptr;
  CUresult (*cuDriverGetVersion)(int*) = nullptr;
  CUresult (*cuDeviceGetCount)(int*) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice*, int) = nullptr;
  CUresult (*cuDeviceGetName)(char*, int, CUdevice) = nullptr;
  CUresult (*cuDeviceGetAttribute)(int*, int, CUdevice) = nullptr;
  CUresult (*cuDeviceTotalMem)(size_t*, CUdevice) = nullptr;  // exported as cuDeviceTotalMem_v2
  CUresult (*cuGetErrorString)(CUresult, const char**) = nullptr;
  // optional, for free memory
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext*, CUdevice) = nullptr;
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice) = nullptr;  // _v2
  CUresult (*cuCtxPushCurrent)(CUcontext) = nullptr;          // _v2
  CUresult (*cuCtxPopCurrent)(CUcontext*) = nullptr;          // _v2
  CUresult (*cuMemGetInfo)(size_t*, size_t*) = nullptr;       // _v2
};

template <class F>
bool load(void* lib, F*& fn, const char* name) {
  fn = reinterpret_cast<F*>(dlsym(lib, name));
  return fn != nullptr;
}

std::string describe(const DriverApi& api, CUresult r) {
  const char* s = nullptr;
  if (api.cuGetErrorString && api.cuGetErrorString(r, &s) == kSuccess && s) return s + (" (CUresult " + std::to_string(r) + ")");
  return "CUresult " + std::to_string(r);
}

// Free memory needs a context: the primary one, retained and released again (other processes' use shows too).
int64_t free_memory(const DriverApi& api, CUdevice dev) {
  if (!api.cuDevicePrimaryCtxRetain || !api.cuDevicePrimaryCtxRelease || !api.cuCtxPushCurrent || !api.cuCtxPopCurrent ||
      !api.cuMemGetInfo)
    return -1;
  CUcontext ctx = nullptr;
  if (api.cuDevicePrimaryCtxRetain(&ctx, dev) != kSuccess) return -1;
  int64_t out = -1;
  if (api.cuCtxPushCurrent(ctx) == kSuccess) {
    size_t free = 0, total = 0;
    if (api.cuMemGetInfo(&free, &total) == kSuccess) out = int64_t(free);
    CUcontext popped = nullptr;
    api.cuCtxPopCurrent(&popped);
  }
  api.cuDevicePrimaryCtxRelease(dev);
  return out;
}

}  // namespace

DriverProbe probe_driver(bool with_free_memory) {
  DriverProbe p;
  p.library = "libcuda.so.1";
  // The handle is kept for the life of the process: unloading a driver library that has run cuInit is not safe.
  static void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    p.error = "no NVIDIA driver (libcuda.so.1 not found)";
    return p;
  }
  DriverApi api;
  if (!load(lib, api.cuInit, "cuInit") || !load(lib, api.cuDriverGetVersion, "cuDriverGetVersion") ||
      !load(lib, api.cuDeviceGetCount, "cuDeviceGetCount") || !load(lib, api.cuDeviceGet, "cuDeviceGet") ||
      !load(lib, api.cuDeviceGetName, "cuDeviceGetName") || !load(lib, api.cuDeviceGetAttribute, "cuDeviceGetAttribute") ||
      !load(lib, api.cuDeviceTotalMem, "cuDeviceTotalMem_v2")) {
    p.error = "libcuda.so.1 lacks a basic driver API function (a broken or very old driver)";
    return p;
  }
  load(lib, api.cuGetErrorString, "cuGetErrorString");
  load(lib, api.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
  load(lib, api.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
  load(lib, api.cuCtxPushCurrent, "cuCtxPushCurrent_v2");
  load(lib, api.cuCtxPopCurrent, "cuCtxPopCurrent_v2");
  load(lib, api.cuMemGetInfo, "cuMemGetInfo_v2");

  api.cuDriverGetVersion(&p.driver_version);  // works before cuInit
  const CUresult init = api.cuInit(0);
  if (init == kErrorNoDevice) {
    p.found = true;
    p.error = "driver found but no GPU";
    return p;
  }
  if (init != kSuccess) {
    p.error = init == kErrorInsufficientDriver
                  ? "the NVIDIA driver is too old for this system's CUDA (cuInit: " + describe(api, init) + ")"
                  : "the NVIDIA driver failed to initialise (cuInit: " + describe(api, init) + ")";
    return p;
  }
  p.found = true;
  int count = 0;
  const CUresult rc = api.cuDeviceGetCount(&count);
  if (rc != kSuccess || count <= 0) {
    p.error = rc == kSuccess ? "driver found but no GPU" : "cuDeviceGetCount failed: " + describe(api, rc);
    return p;
  }
  for (int i = 0; i < count; i++) {
    CUdevice dev = 0;
    if (api.cuDeviceGet(&dev, i) != kSuccess) continue;
    GpuDevice d;
    d.index = i;
    char name[256] = {0};
    if (api.cuDeviceGetName(name, int(sizeof name) - 1, dev) == kSuccess) d.name = name;
    api.cuDeviceGetAttribute(&d.cc_major, kAttrCcMajor, dev);
    api.cuDeviceGetAttribute(&d.cc_minor, kAttrCcMinor, dev);
    api.cuDeviceGetAttribute(&d.multiprocessors, kAttrMultiprocessors, dev);
    int smem = 0;
    if (api.cuDeviceGetAttribute(&smem, kAttrSmemOptin, dev) == kSuccess && smem > 0) d.smem_optin_bytes = uint64_t(smem);
    size_t total = 0;
    if (api.cuDeviceTotalMem(&total, dev) == kSuccess) d.memory_bytes = total;
    if (with_free_memory) d.free_bytes = free_memory(api, dev);
    p.devices.push_back(d);
  }
  if (p.devices.empty()) p.error = "driver found but no GPU";
  return p;
}

}  // namespace vr::cuda_runtime
