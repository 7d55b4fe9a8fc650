// Embedding gather (table rows converted to fp32) and its scatter-add gradient.
#include "cpu/cpu_ops.h"

namespace vr::cpu {

void embedding_forward(float* out, const int32_t* ids, int64_t T, const void* table, DType dtype, int64_t C) {
  const size_t row_bytes = size_t(C) * dtype_size(dtype);
  const unsigned char* base = static_cast<const unsigned char*>(table);
#pragma omp parallel for schedule(static) if (T * C > 65536)
  for (int64_t t = 0; t < T; t++) convert_to_f32(out + t * C, base + size_t(ids[t]) * row_bytes, dtype, size_t(C));
}

// Repeated ids add into the same row, so threads split the columns, not the tokens.
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t T, int64_t C) {
  const int64_t block = 256;
  const int64_t nblocks = (C + block - 1) / block;
#pragma omp parallel for schedule(static) if (T * C > 65536)
  for (int64_t cb = 0; cb < nblocks; cb++) {
    const int64_t c0 = cb * block, c1 = c0 + block < C ? c0 + block : C;
    for (int64_t t = 0; t < T; t++) {
      float* dst = dtable + int64_t(ids[t]) * C;
      const float* src = dout + t * C;
      for (int64_t c = c0; c < c1; c++) dst[c] += src[c];
    }
  }
}

}  // namespace vr::cpu
