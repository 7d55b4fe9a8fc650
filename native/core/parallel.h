// Thread count for OpenMP and oneDNN, and CPU feature detection (done at run time, never assumed:
// machines of one kind differ; some have AMX, some only AVX-512-BF16).
#pragma once
#include <string>

namespace vr {

void set_num_threads(int n);
int num_threads();

struct CpuFeatures {
  std::string model;       // /proc/cpuinfo "model name"
  bool avx2 = false;
  bool avx512f = false;
  bool avx512_bf16 = false;
  bool amx_bf16 = false;
};
const CpuFeatures& cpu_features();

}  // namespace vr
