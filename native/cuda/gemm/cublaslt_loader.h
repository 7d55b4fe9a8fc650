// Finds and loads libcublasLt at run time (dlopen), never at link time: the toolkits on the build machines have
// no cuBLAS, while GPU machines have it from the full toolkit or from PyTorch's nvidia-cublas wheels. When it is
// not found, GEMMs run on our own kernel (native/cuda/kernels/gemm.h); cublaslt_info() says what happened.
//
// Search order (first candidate that loads and has every entry point wins):
//   1. $VREFLECT_CUBLASLT: a library file, or a directory holding one. When set, it is the only candidate;
//      "off" (or "none", "0") disables cuBLASLt.
//   2. $CUDA_HOME/lib64, $CUDA_PATH/lib64 (and their targets/<arch>-linux/lib).
//   3. The default loader path (LD_LIBRARY_PATH, the ldconfig cache), by soname.
//   4. Python wheels: <site-packages>/nvidia/cu13/lib and <site-packages>/nvidia/cublas/lib, site-packages of
//      $VIRTUAL_ENV and $CONDA_PREFIX, then those that `$VREFLECT_PYTHON` (default python3) reports; set
//      VREFLECT_PYTHON=none to skip starting Python.
// In each directory the sonames are tried newest first: libcublasLt.so.13, .so.12, .so.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "cuda/gemm/cublaslt_api.h"
#include "cuda/kernels/cuda_kernels.h"  // VR_CUDA_ABI: the emulator and GPU builds keep separate copies

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

struct CublasLtInfo {
  bool found = false;
  std::string path;     // the library that was loaded
  std::string version;  // "12.9.1" (cublasLtGetVersion)
  std::string error;    // why it was not found (one line), empty when found
  std::vector<std::string> tried;
};

using EnvLookup = std::function<const char*(const char*)>;

// The candidate paths in search order, for an environment (steps 1-3 and the site-packages dirs given).
std::vector<std::string> cublaslt_candidates(const EnvLookup& env, const std::vector<std::string>& site_packages);
// Runs the search (step 4 only when allow_python) and loads the first candidate that works. The library stays
// loaded; *api (when non-null) receives its entry points.
CublasLtInfo cublaslt_probe(const EnvLookup& env, bool allow_python, lt::Api* api = nullptr);

// Process-wide: searched once with the real environment, thread-safe.
const CublasLtInfo& cublaslt_info();
const lt::Api* cublaslt_api();  // null when not found

// {"found":..,"path":..,"version":..,"error":..} (for doctor and the bench output).
std::string cublaslt_info_json(const CublasLtInfo& info);

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
