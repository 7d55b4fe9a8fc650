// Rotate-half RoPE in place (ops/rope.h), forward and backward (the transposed rotation). One thread per
// rotation pair (t, h, i < D/2); the per-token cos/sin tables are fp32 [T, D].
#include "cuda/kernels/common.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kThreads = 256;

//   forward:  a' = a c1 - b s1,      b' = b c2 + a s2
//   backward: da = da' c1 + db' s2,  db = db' c2 - da' s1        (c1 = cos[i], c2 = cos[i + D/2], ...)
template <class T, bool kBackward>
__global__ void rope_kernel(T* x, const float* cos, const float* sin, int64_t T_, int H, int D, int64_t stride) {
  using namespace dev;
  const int h2 = D / 2;
  const int64_t pairs = T_ * H * h2;
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < pairs; p += int64_t(gridDim.x) * blockDim.x) {
    const int i = int(p % h2);
    const int h = int(p / h2 % H);
    const int64_t t = p / (int64_t(h2) * H);
    T* a = x + t * stride + int64_t(h) * D + i;
    const float* c = cos + t * D + i;
    const float* s = sin + t * D + i;
    const float av = to_f32(a[0]), bv = to_f32(a[h2]);
    if (!kBackward) {
      a[0] = from_f32<T>(av * c[0] - bv * s[0]);
      a[h2] = from_f32<T>(bv * c[h2] + av * s[h2]);
    } else {
      a[0] = from_f32<T>(av * c[0] + bv * s[h2]);
      a[h2] = from_f32<T>(bv * c[h2] - av * s[0]);
    }
  }
}

template <class T, bool kBackward, class S>
void run(S* x, const float* cos, const float* sin, int64_t T_, int H, int D, int64_t stride, Stream s) {
  const char* name = kBackward ? "rope_backward" : "rope_forward";
  VR_CHECK(T_ >= 0 && H > 0 && D > 0 && D % 2 == 0, "cuda ", name, ": bad shape T=", T_, " H=", H, " D=", D,
           " (D must be even)");
  VR_CHECK(stride >= int64_t(H) * D, "cuda ", name, ": row stride ", stride, " < H*D=", int64_t(H) * D);
  if (T_ == 0) return;
  VR_CHECK(x && cos && sin, "cuda ", name, ": null buffer");
  const int64_t pairs = T_ * H * (D / 2);
  check_launch(cuda_launch(rope_kernel<T, kBackward>, dim3(grid_for(pairs, kThreads)), dim3(kThreads), 0, s,
                           dptr(x), cos, sin, T_, H, D, stride),
               name);
}

}  // namespace

void rope_forward(float* x, const float* cos, const float* sin, int64_t T, int H, int D, int64_t stride, Stream s) {
  run<float, false>(x, cos, sin, T, H, D, stride, s);
}
void rope_forward(bf16* x, const float* cos, const float* sin, int64_t T, int H, int D, int64_t stride, Stream s) {
  run<__nv_bfloat16, false>(x, cos, sin, T, H, D, stride, s);
}
void rope_backward(float* dx, const float* cos, const float* sin, int64_t T, int H, int D, int64_t stride,
                   Stream s) {
  run<float, true>(dx, cos, sin, T, H, D, stride, s);
}
void rope_backward(bf16* dx, const float* cos, const float* sin, int64_t T, int H, int D, int64_t stride, Stream s) {
  run<__nv_bfloat16, true>(dx, cos, sin, T, H, D, stride, s);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
