// Token embedding lookup (gather), forward and backward. The table may be F32, BF16 or F16 (converted
// row by row to fp32). Ids outside [0, V) throw vr::Error.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace vr {

void embedding_forward(float* out, const int32_t* ids, int64_t T, const void* table, DType dtype, int64_t V,
                       int64_t C);
// dtable[ids[t], :] += dout[t, :] (fp32 gradient table).
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t T, int64_t V, int64_t C);

}  // namespace vr
