// Rotate-half RoPE in place (ops/rope.h), forward and backward (the transposed rotation). One thread per
// rotation pair (t, h, i < D/2); the per-token cos/sin tables are fp32 [T, D].
// The 16-byte path (D / 2 and the row stride multiples of 8, x / cos / sin 16-byte aligned): one thread per 8
// consecutive pairs, the same per-pair maths (rope_pair).
#include "cuda/kernels/common.cuh"
#include "cuda/kernels/elementwise_vec.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kThreads = 256;

//   forward:  a' = a c1 - b s1,      b' = b c2 + a s2
//   backward: da = da' c1 + db' s2,  db = db' c2 - da' s1        (c1 = cos[i], c2 = cos[i + D/2], ...)
template <bool kBackward>
__device__ __forceinline__ void rope_pair(float& a, float& b, float c1, float c2, float s1, float s2) {
  const float av = a, bv = b;
  if (!kBackward) {
    a = av * c1 - bv * s1;
    b = bv * c2 + av * s2;
  } else {
    a = av * c1 + bv * s2;
    b = bv * c2 - av * s1;
  }
}

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
    float av = to_f32(a[0]), bv = to_f32(a[h2]);
    rope_pair<kBackward>(av, bv, c[0], c[h2], s[0], s[h2]);
    a[0] = from_f32<T>(av);
    a[h2] = from_f32<T>(bv);
  }
}

template <class T, bool kBackward>
__global__ void rope_vec_kernel(T* x, const float* cos, const float* sin, int64_t T_, int H, int D, int64_t stride) {
  const int g2 = D / 2 / vec::kN;  // groups of 8 pairs per head
  const int64_t groups = T_ * H * g2;
  for (int64_t p = vec::first(); p < groups; p += vec::stride()) {
    const int i = int(p % g2) * vec::kN;
    const int h = int(p / g2 % H);
    const int64_t t = p / (int64_t(g2) * H);
    const int h2 = D / 2;
    T* a = x + t * stride + int64_t(h) * D + i;
    const float* c = cos + t * D + i;
    const float* s = sin + t * D + i;
    float av[vec::kN], bv[vec::kN], c1[vec::kN], c2[vec::kN], s1[vec::kN], s2[vec::kN];
    vec::load8(a, av);
    vec::load8(a + h2, bv);
    vec::load8(c, c1);
    vec::load8(c + h2, c2);
    vec::load8(s, s1);
    vec::load8(s + h2, s2);
    VR_UNROLL for (int j = 0; j < vec::kN; j++) rope_pair<kBackward>(av[j], bv[j], c1[j], c2[j], s1[j], s2[j]);
    vec::store8(a, av);
    vec::store8(a + h2, bv);
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
  if ((D / 2) % vec::kN == 0 && stride % vec::kN == 0 && vec::usable(x, cos, sin)) {
    check_launch(cuda_launch(rope_vec_kernel<T, kBackward>, dim3(grid_for(pairs / vec::kN, kThreads)), dim3(kThreads),
                             0, s, dptr(x), cos, sin, T_, H, D, stride),
                 name);
    return;
  }
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
