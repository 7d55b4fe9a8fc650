// Thread count for OpenMP and oneDNN, and CPU feature detection (done at run time, never assumed:
// machines of one kind differ; some have AMX, some only AVX-512-BF16).
#pragma once
#include <string>

namespace vr {

// set_num_threads applies to OpenMP and to oneDNN (which runs on the same OpenMP runtime). It is one
// process-wide value: every op entry point calls apply_num_threads(), so kernels started from any thread
// (e.g. N-API worker threads) use it, not just the thread that called set_num_threads.
void set_num_threads(int n);
int num_threads();
void apply_num_threads();

struct CpuFeatures {
  std::string model;       // /proc/cpuinfo "model name"
  bool avx2 = false;
  bool avx512f = false;
  bool avx512_bf16 = false;
  bool amx_bf16 = false;
};
const CpuFeatures& cpu_features();

}  // namespace vr
