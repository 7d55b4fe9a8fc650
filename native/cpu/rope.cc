// Rotate-half RoPE in place over [T, H, D] rows; see ops/rope.h. Backward applies the transposed rotation.
#include "cpu/cpu_ops.h"
#include "cpu/simd.h"

namespace vr::cpu {

namespace {

// sign = +1: forward rotation; sign = -1: transposed rotation (the gradient).
//   forward:  a' = a c1 - b s1,  b' = b c2 + a s2
//   backward: da = da' c1 + db' s2,  db = db' c2 - da' s1
VR_CLONES void rope_apply(float* x, const float* cos, const float* sin, int64_t T, int H, int D, int64_t stride,
                          bool transpose) {
  const int h2 = D / 2;
#pragma omp parallel for schedule(static) if (T * H * D > 65536)
  for (int64_t t = 0; t < T; t++) {
    const float* c = cos + t * D;
    const float* s = sin + t * D;
    for (int h = 0; h < H; h++) {
      float* a = x + t * stride + int64_t(h) * D;
      float* b = a + h2;
      if (!transpose) {
#pragma omp simd
        for (int i = 0; i < h2; i++) {
          const float ai = a[i], bi = b[i];
          a[i] = ai * c[i] - bi * s[i];
          b[i] = bi * c[i + h2] + ai * s[i + h2];
        }
      } else {
#pragma omp simd
        for (int i = 0; i < h2; i++) {
          const float ai = a[i], bi = b[i];
          a[i] = ai * c[i] + bi * s[i + h2];
          b[i] = bi * c[i + h2] - ai * s[i];
        }
      }
    }
  }
}

}  // namespace

void rope_forward(float* x, const float* cos, const float* sin, int64_t T, int H, int D, int64_t stride) {
  rope_apply(x, cos, sin, T, H, D, stride, false);
}

void rope_backward(float* dx, const float* cos, const float* sin, int64_t T, int H, int D, int64_t stride) {
  rope_apply(dx, cos, sin, T, H, D, stride, true);
}

}  // namespace vr::cpu
