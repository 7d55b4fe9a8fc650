// cudaProbe({freeMemory?}): the CUDA facts doctor and `--device cuda` need - what was built (archs), the driver
// as seen through dlopen (every build), and the statically linked runtime's view (CUDA builds). Never throws for a
// missing driver or GPU: those are reported in `error` fields, one line each.
#include "addon/bindings.h"
#include "cuda/runtime/device_info.h"
#if defined(VREFLECT_HAVE_CUDA)
#include "cuda/kernels/cuda_kernels.h"
#include "cuda/model/gpu_session.h"
#endif

namespace vr::addon {

namespace {

Napi::Object DeviceObject(Napi::Env env, const cuda_runtime::GpuDevice& d) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", d.index);
  o.Set("name", d.name);
  o.Set("ccMajor", d.cc_major);
  o.Set("ccMinor", d.cc_minor);
  o.Set("multiprocessors", d.multiprocessors);
  o.Set("memoryBytes", double(d.memory_bytes));
  if (d.free_bytes >= 0) o.Set("freeBytes", double(d.free_bytes));
  else o.Set("freeBytes", env.Null());
  if (d.smem_optin_bytes > 0) {
    o.Set("smemOptinBytes", double(d.smem_optin_bytes));
#if defined(VREFLECT_HAVE_CUDA)
    // The tensor-core attention's tile variants a call runs on this device (VREFLECT_ATTENTION_TILE_FWD / _BWD, or
    // auto: the first of the preference that fits its shared memory); a bad variable is reported, not thrown.
    Napi::Object tiles = Napi::Object::New(env);
    try {
      tiles.Set("forward", cuda::attention_tc_tile_at(false, size_t(d.smem_optin_bytes)));
      tiles.Set("backward", cuda::attention_tc_tile_at(true, size_t(d.smem_optin_bytes)));
    } catch (const std::exception& e) {
      tiles = Napi::Object::New(env);
      tiles.Set("error", e.what());
    }
    o.Set("attentionTiles", tiles);
#endif
  }
  if (d.image_checked) {
    Napi::Object img = Napi::Object::New(env);
    img.Set("ok", d.image_ok);
    img.Set("binaryVersion", d.binary_version);
    img.Set("ptxVersion", d.ptx_version);
    if (!d.image_error.empty()) img.Set("error", d.image_error);
    o.Set("kernelImage", img);
  }
  return o;
}

Napi::Array DeviceArray(Napi::Env env, const std::vector<cuda_runtime::GpuDevice>& ds) {
  Napi::Array a = Napi::Array::New(env, ds.size());
  for (size_t i = 0; i < ds.size(); i++) a.Set(uint32_t(i), DeviceObject(env, ds[i]));
  return a;
}

Napi::Value CudaProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool with_free = false;
  if (info.Length() > 0 && info[0].IsObject()) {
    Napi::Value v = info[0].As<Napi::Object>().Get("freeMemory");
    if (!v.IsUndefined() && !v.IsBoolean()) return ThrowType(env, "cudaProbe: 'freeMemory' must be a boolean");
    with_free = v.IsBoolean() && v.As<Napi::Boolean>().Value();
  }
  const cuda_runtime::CudaBuild b = cuda_runtime::cuda_build();
  Napi::Object o = Napi::Object::New(env);
  o.Set("built", b.built);
  o.Set("archs", b.built ? Napi::Value(Napi::String::New(env, b.archs)) : env.Null());
  o.Set("nvccVersion", b.built ? Napi::Value(Napi::String::New(env, b.nvcc_version)) : env.Null());

  // The runtime is asked first (when built): it owns the contexts the process will use. The driver probe then
  // only reads attributes, so it does not need free memory a second time.
  if (b.built) {
    const cuda_runtime::RuntimeProbe r = cuda_runtime::probe_runtime(with_free);
    Napi::Object rt = Napi::Object::New(env);
    rt.Set("runtimeVersion", r.runtime_version);
    rt.Set("driverVersion", r.driver_version);
    rt.Set("devices", DeviceArray(env, r.devices));
    if (!r.error.empty()) rt.Set("error", r.error);
    o.Set("runtime", rt);
  } else {
    o.Set("runtime", env.Null());
  }
#if defined(VR_CUDA_EMULATED)
  // The emulator addon: the CPU emulator stands in for the driver (native/cuda_emu/emu_probe.cc).
  const cuda_runtime::DriverProbe d = cuda_runtime::probe_emulator_driver(with_free);
#else
  const cuda_runtime::DriverProbe d = cuda_runtime::probe_driver(with_free && !b.built);
#endif
  Napi::Object drv = Napi::Object::New(env);
  drv.Set("found", d.found);
  drv.Set("library", d.library);
  drv.Set("version", d.driver_version);
  drv.Set("devices", DeviceArray(env, d.devices));
  if (!d.error.empty()) drv.Set("error", d.error);
  o.Set("driver", drv);
  return o;
}

// cudaRequireDevice(): throws the one-line reason the CUDA session cannot run here (no driver, no GPU, no kernel
// image for it, no CUDA backend built); returns the device's name otherwise.
Napi::Value CudaRequireDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
#if defined(VREFLECT_HAVE_CUDA)
  try {
    cuda::require_cuda_device();
    return Napi::String::New(env, cuda::cuda_device_name());
  } catch (const std::exception& e) {
    return ThrowError(env, e.what());
  }
#else
  return ThrowError(env, "--device cuda: this build has no CUDA backend (VREFLECT_CUDA=ON npm rebuild where nvcc is on PATH)");
#endif
}

}  // namespace

void InitDevice(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaProbe", Napi::Function::New(env, CudaProbe));
  exports.Set("cudaRequireDevice", Napi::Function::New(env, CudaRequireDevice));
}

}  // namespace vr::addon
