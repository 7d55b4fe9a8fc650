// Embedding op: validates ids (all of them, before writing anything), then runs the backend.
#include "ops/embedding.h"

#include "core/error.h"
#include "core/parallel.h"
#include "cpu/cpu_ops.h"

namespace vr {

namespace {
void check_ids(const int32_t* ids, int64_t T, int64_t V, const char* op) {
  for (int64_t t = 0; t < T; t++)
    VR_CHECK(ids[t] >= 0 && ids[t] < V, op, ": token id ", ids[t], " at position ", t, " is outside [0, ", V, ")");
}
}  // namespace

void embedding_forward(float* out, const int32_t* ids, int64_t T, const void* table, DType dtype, int64_t V,
                       int64_t C) {
  VR_CHECK(T >= 0 && V > 0 && C > 0, "embedding_forward: bad shape T=", T, " V=", V, " C=", C);
  VR_CHECK(dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16, "embedding_forward: table dtype ",
           dtype_name(dtype), " is not a float type");
  if (T == 0) return;
  VR_CHECK(out && ids && table, "embedding_forward: null buffer");
  check_ids(ids, T, V, "embedding_forward");
  apply_num_threads();
  cpu::embedding_forward(out, ids, T, table, dtype, C);
}

void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t T, int64_t V, int64_t C) {
  VR_CHECK(T >= 0 && V > 0 && C > 0, "embedding_backward: bad shape T=", T, " V=", V, " C=", C);
  if (T == 0) return;
  VR_CHECK(dtable && dout && ids, "embedding_backward: null buffer");
  check_ids(ids, T, V, "embedding_backward");
  apply_num_threads();
  cpu::embedding_backward(dtable, dout, ids, T, C);
}

}  // namespace vr
