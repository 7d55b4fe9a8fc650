// KV-cache append (model/kv_cache.h layout): per layer, K and V rows [capacity, kv_heads * head_dim]; a forward
// of T new tokens writes rows pos .. pos+T-1. The new rows usually come from a fused projection output, hence
// the source row strides. Keys arrive after RoPE (the cache stores rotated keys, as transformers does).
// One grid-stride loop over the T * row elements of both tensors; the f32 -> bf16 variant rounds to nearest even.
// kv_append_at reads the first row's position from device memory, so a captured CUDA graph (the decode step,
// GpuSession) replays the append at the current cache length instead of the one seen at capture.
// A 16-byte path (rows and strides multiples of 8 elements, every pointer 16-byte aligned) moves chunks of 8.
#include "cuda/kernels/common.cuh"
#include "cuda/kernels/elementwise_vec.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kThreads = 256;

template <class D, class S>
__global__ void kv_append_kernel(D* k_cache, D* v_cache, const S* k_new, const S* v_new, int64_t pos, int64_t T,
                                 int64_t row, int64_t k_stride, int64_t v_stride, const int32_t* pos_dev) {
  using namespace dev;
  if (pos_dev) pos = *pos_dev;
  const int64_t n = T * row;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / row, c = i % row, dst = (pos + t) * row + c;
    if (k_cache) k_cache[dst] = from_f32<D>(to_f32(k_new[t * k_stride + c]));
    if (v_cache) v_cache[dst] = from_f32<D>(to_f32(v_new[t * v_stride + c]));
  }
}

// The 16-byte path: chunk k of the T * row / 8 is row t, columns c .. c + 7; the same per-element conversion.
template <class D, class S>
__global__ void kv_append_vec_kernel(D* k_cache, D* v_cache, const S* k_new, const S* v_new, int64_t pos, int64_t T,
                                     int64_t row, int64_t k_stride, int64_t v_stride, const int32_t* pos_dev) {
  if (pos_dev) pos = *pos_dev;
  const int64_t row_chunks = row / vec::kN, chunks = T * row_chunks;
  for (int64_t k = vec::first(); k < chunks; k += vec::stride()) {
    const int64_t t = k / row_chunks, c = k % row_chunks * vec::kN, dst = (pos + t) * row + c;
    float f[vec::kN];
    if (k_cache) {
      vec::load8(k_new + t * k_stride + c, f);
      vec::store8(k_cache + dst, f);
    }
    if (v_cache) {
      vec::load8(v_new + t * v_stride + c, f);
      vec::store8(v_cache + dst, f);
    }
  }
}

template <class D, class S, class DA, class SA>
void append(DA* k_cache, DA* v_cache, const SA* k_new, const SA* v_new, int64_t pos, int64_t T, int64_t row,
            int64_t k_stride, int64_t v_stride, int64_t capacity, Stream s, const int32_t* pos_dev = nullptr) {
  VR_CHECK(T >= 0 && row > 0 && pos >= 0 && capacity >= 0, "cuda kv_append: bad shape pos=", pos, " T=", T,
           " row=", row, " capacity=", capacity);
  VR_CHECK(pos + T <= capacity, "cuda kv_append: rows ", pos, "..", pos + T, " exceed the cache capacity ", capacity);
  VR_CHECK(bool(k_cache) == bool(k_new) && bool(v_cache) == bool(v_new),
           "cuda kv_append: a cache and its new rows must both be given or both be null");
  VR_CHECK((!k_new || k_stride >= row) && (!v_new || v_stride >= row), "cuda kv_append: a source row stride is "
           "smaller than the row (", row, ")");
  if (T == 0 || (!k_cache && !v_cache)) return;
  if (row % vec::kN == 0 && k_stride % vec::kN == 0 && v_stride % vec::kN == 0 &&
      vec::usable(k_cache, v_cache, k_new, v_new)) {
    check_launch(cuda_launch(kv_append_vec_kernel<D, S>, dim3(grid_for(T * row / vec::kN, kThreads)), dim3(kThreads),
                             0, s, dptr(k_cache), dptr(v_cache), dptr(k_new), dptr(v_new), pos, T, row, k_stride,
                             v_stride, pos_dev),
                 "kv_append (16-byte)");
    return;
  }
  check_launch(cuda_launch(kv_append_kernel<D, S>, dim3(grid_for(T * row, kThreads)), dim3(kThreads), 0, s,
                           dptr(k_cache), dptr(v_cache), dptr(k_new), dptr(v_new), pos, T, row, k_stride, v_stride,
                           pos_dev),
               "kv_append");
}

}  // namespace

void kv_append(float* k_cache, float* v_cache, const float* k_new, const float* v_new, int64_t pos, int64_t T,
               int64_t row, int64_t k_stride, int64_t v_stride, int64_t capacity, Stream s) {
  append<float, float>(k_cache, v_cache, k_new, v_new, pos, T, row, k_stride, v_stride, capacity, s);
}
void kv_append(bf16* k_cache, bf16* v_cache, const bf16* k_new, const bf16* v_new, int64_t pos, int64_t T,
               int64_t row, int64_t k_stride, int64_t v_stride, int64_t capacity, Stream s) {
  append<__nv_bfloat16, __nv_bfloat16>(k_cache, v_cache, k_new, v_new, pos, T, row, k_stride, v_stride, capacity, s);
}
void kv_append(bf16* k_cache, bf16* v_cache, const float* k_new, const float* v_new, int64_t pos, int64_t T,
               int64_t row, int64_t k_stride, int64_t v_stride, int64_t capacity, Stream s) {
  append<__nv_bfloat16, float>(k_cache, v_cache, k_new, v_new, pos, T, row, k_stride, v_stride, capacity, s);
}
void kv_append_at(bf16* k_cache, bf16* v_cache, const bf16* k_new, const bf16* v_new, const int32_t* pos, int64_t T,
                  int64_t row, int64_t k_stride, int64_t v_stride, Stream s) {
  VR_CHECK(pos, "cuda kv_append_at: null device position");
  // The bounds check against the capacity is the caller's (it knows the position on the host: GpuKVCache).
  append<__nv_bfloat16, __nv_bfloat16>(k_cache, v_cache, k_new, v_new, 0, T, row, k_stride, v_stride, T, s, pos);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
