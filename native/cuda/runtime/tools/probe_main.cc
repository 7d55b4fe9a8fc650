// vreflect_cuda_probe: the addon's cudaProbe() as a command, for GPU machines without Node.js. Prints one JSON
// object with the same fields (test/fixtures/cuda holds recorded ones). Exit code 0 whatever it finds.
#include <cstdio>
#include <string>

#include "core/json_string.h"
#include "cuda/runtime/device_info.h"

namespace {

using vr::json_string;

std::string devices(const std::vector<vr::cuda_runtime::GpuDevice>& ds) {
  std::string o = "[";
  for (size_t i = 0; i < ds.size(); i++) {
    const auto& d = ds[i];
    o += (i ? "," : "") + std::string("{\"index\":") + std::to_string(d.index) + ",\"name\":" + json_string(d.name) +
         ",\"ccMajor\":" + std::to_string(d.cc_major) + ",\"ccMinor\":" + std::to_string(d.cc_minor) +
         ",\"multiprocessors\":" + std::to_string(d.multiprocessors) + ",\"memoryBytes\":" + std::to_string(d.memory_bytes) +
         ",\"freeBytes\":" + (d.free_bytes >= 0 ? std::to_string(d.free_bytes) : "null");
    if (d.image_checked)
      o += ",\"kernelImage\":{\"ok\":" + std::string(d.image_ok ? "true" : "false") + ",\"binaryVersion\":" +
           std::to_string(d.binary_version) + ",\"ptxVersion\":" + std::to_string(d.ptx_version) +
           (d.image_error.empty() ? "" : ",\"error\":" + json_string(d.image_error)) + "}";
    o += "}";
  }
  return o + "]";
}

}  // namespace

int main() {
  using namespace vr::cuda_runtime;
  const CudaBuild b = cuda_build();
  std::string o = "{\"built\":" + std::string(b.built ? "true" : "false") + ",\"archs\":" + (b.built ? json_string(b.archs) : "null") +
                  ",\"nvccVersion\":" + (b.built ? json_string(b.nvcc_version) : "null") + ",\"runtime\":";
  if (b.built) {
    const RuntimeProbe r = probe_runtime(true);
    o += "{\"runtimeVersion\":" + std::to_string(r.runtime_version) + ",\"driverVersion\":" + std::to_string(r.driver_version) +
         ",\"devices\":" + devices(r.devices) + (r.error.empty() ? "" : ",\"error\":" + json_string(r.error)) + "}";
  } else {
    o += "null";
  }
  const DriverProbe d = probe_driver(!b.built);
  o += ",\"driver\":{\"found\":" + std::string(d.found ? "true" : "false") + ",\"library\":" + json_string(d.library) +
       ",\"version\":" + std::to_string(d.driver_version) + ",\"devices\":" + devices(d.devices) +
       (d.error.empty() ? "" : ",\"error\":" + json_string(d.error)) + "}}";
  std::printf("%s\n", o.c_str());
  return 0;
}
