// 16-byte paths of the memory-bound kernels (swiglu, gelu, rope, norm, cross_entropy, embedding's row scatters,
// kv_append, adamw, the model path's convert): a thread moves CHUNKS of 8 consecutive elements, one 16-byte access
// of bf16 or two of fp32, instead of one 2- or 4-byte element per grid-stride trip, so far fewer threads keep HBM
// busy.
//
// The per-element arithmetic of a vector kernel is its scalar kernel's (the same inline function on the same
// floats), so the two give the same bits (cuda_tests/test_elementwise_vec.cc runs both on the same inputs). The row
// reductions (RMSNorm's and LayerNorm's sums, cross-entropy's max / sum) keep the scalar order too, through a
// shared-memory transpose of each window (window_put / window_get below).
//
// Which path runs is decided on the host, once per call: the 16-byte one when VREFLECT_ELEMENTWISE is not "scalar"
// and every pointer is 16-byte aligned (and, for row kernels, the row strides are multiples of 8 elements);
// otherwise the scalar kernel, which is kept as the fallback for odd shapes and as the switch for a first GPU run.
#pragma once
#include <cstdint>
#include <cstring>

#include "cuda/kernels/common.cuh"
#include "cuda/kernels/mma.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {
namespace vec {

constexpr int kN = 8;  // elements per chunk

void note_vector_call();  // elementwise_vec.cu: counts for elementwise_vector_calls()

// 16-byte aligned (a null pointer, an absent optional buffer, counts as aligned).
inline bool aligned(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }
template <class... P>
inline bool all_aligned(const P*... p) {
  return (aligned(p) && ...);
}
// The 16-byte path is allowed: the switch is on and every pointer aligned.
template <class... P>
inline bool usable(const P*... p) {
  if (!elementwise_vector_enabled() || !all_aligned(p...)) return false;
  note_vector_call();
  return true;
}

// 8 elements to fp32 (bf16 -> fp32 is exact: the bits shifted up, as __bfloat162float).
__device__ __forceinline__ void load8(const float* p, float (&f)[kN]) {
  const uint4 a = mma::vector_load<uint4>(p, "16-byte fp32 load"), b = mma::vector_load<uint4>(p + 4, "16-byte fp32 load");
  std::memcpy(f, &a, 16);
  std::memcpy(f + 4, &b, 16);
}
__device__ __forceinline__ void load8(const __nv_bfloat16* p, float (&f)[kN]) {
  const uint4 a = mma::vector_load<uint4>(p, "16-byte bf16 load");
  const uint32_t w[4] = {a.x, a.y, a.z, a.w};
  VR_UNROLL for (int j = 0; j < 4; j++) {
    f[2 * j] = mma::f32_from_bits(w[j] << 16);
    f[2 * j + 1] = mma::f32_from_bits(w[j] & 0xffff0000u);
  }
}

// 8 fp32 stored as T, rounded as the scalar kernels' from_f32<T> (round to nearest even for bf16).
__device__ __forceinline__ void store8(float* p, const float (&f)[kN]) {
  uint4 a, b;
  std::memcpy(&a, f, 16);
  std::memcpy(&b, f + 4, 16);
  mma::vector_store(p, a, "16-byte fp32 store");
  mma::vector_store(p + 4, b, "16-byte fp32 store");
}
__device__ __forceinline__ void store8(__nv_bfloat16* p, const float (&f)[kN]) {
  __nv_bfloat16 h[kN];
  VR_UNROLL for (int j = 0; j < kN; j++) h[j] = cuda::dev::from_f32<__nv_bfloat16>(f[j]);
  uint4 a;
  std::memcpy(&a, h, 16);
  mma::vector_store(p, a, "16-byte bf16 store");
}

// The row reductions keep the scalar kernels' order. A scalar row kernel's thread t visits columns t, t + B,
// t + 2B, ... (B = blockDim.x) and folds each into its partial sum in that order; a 16-byte path loads chunks
// instead (thread t: columns 8t .. 8t + 7 of each window of 8B columns), so before folding it passes each window
// through shared memory and thread t reads back columns t, t + B, ..., t + 7B of it: the scalar order exactly, so
// sums, maxima and the block reductions after them give the same bits. `win` holds kN * blockDim floats;
// window_put before a barrier, window_get after it (and another barrier before the next put): fold_row below.
// Element i (0..7) of this thread's scalar-order columns in the window: window column threadIdx.x + i * blockDim.x.
__device__ __forceinline__ float window_get(const float* win, int i) { return win[threadIdx.x + i * blockDim.x]; }

// 8 fp32 to / from SHARED memory where lanes sit 32 bytes apart (windows, RMSNorm's dw): two 16-byte moves, lanes
// 4-7 of each quarter-warp doing their second half first. Without the swap a quarter-warp's first move touches bytes
// 0, 32, ..., 224: lanes l and l + 4 share banks (2-way, the emulator's bank accounting counts it); with it the 8
// lanes cover 128 distinct bytes (test_elementwise_vec.cc's bank audit).
__device__ __forceinline__ void store8_shared(float* p, const float (&f)[kN]) {
  const bool swap = (threadIdx.x >> 2) & 1;
  uint4 lo, hi;
  std::memcpy(&lo, f, 16);
  std::memcpy(&hi, f + 4, 16);
  mma::vector_store(p + (swap ? 4 : 0), swap ? hi : lo, "16-byte shared store");
  mma::vector_store(p + (swap ? 0 : 4), swap ? lo : hi, "16-byte shared store");
}
__device__ __forceinline__ void load8_shared(const float* p, float (&f)[kN]) {
  const bool swap = (threadIdx.x >> 2) & 1;
  const uint4 a = mma::vector_load<uint4>(p + (swap ? 4 : 0), "16-byte shared load");
  const uint4 b = mma::vector_load<uint4>(p + (swap ? 0 : 4), "16-byte shared load");
  std::memcpy(f, swap ? &b : &a, 16);
  std::memcpy(f + 4, swap ? &a : &b, 16);
}
__device__ __forceinline__ void window_put(float* win, const float (&v)[kN], bool have) {
  if (have) store8_shared(win + kN * threadIdx.x, v);
}

// A row of C columns (C % kN == 0 not required: the last window may be partial) folded in the scalar kernels'
// order, window by window. Window k holds chunks k B .. k B + B - 1 (B = blockDim.x): load(k, ch, v) fills v[a][0..7]
// with array a's 8 values of chunk ch (called only for ch < C / kN), the NA arrays pass through shared memory
// (`win`: NA * kN * blockDim floats, 16-byte aligned), and visit(col) is called for each of this thread's
// scalar-order columns c < C of the window (c = window start + threadIdx.x + i B, i = 0..7, in that order) with
// col[a] = array a's value at c. Two barriers per window: every thread of the block must call it.
template <int NA, class Load, class Visit>
__device__ __forceinline__ void fold_row(float* win, int64_t C, Load load, Visit visit) {
  const int64_t chunks = C / kN, B = blockDim.x;
  for (int64_t k = 0; k * B * kN < C; k++) {
    const int64_t ch = threadIdx.x + k * B;
    const bool have = ch < chunks;
    float v[NA][kN];
    if (have) load(k, ch, v);
    VR_UNROLL for (int a = 0; a < NA; a++) window_put(win + a * kN * B, v[a], have);
    __syncthreads();
    VR_UNROLL for (int i = 0; i < kN; i++)
      if (k * B * kN + threadIdx.x + i * B < C) {
        float col[NA];
        VR_UNROLL for (int a = 0; a < NA; a++) col[a] = window_get(win + a * kN * B, i);
        visit(col);
      }
    __syncthreads();
  }
}

// Grid-stride indices of this thread: first, stride.
__device__ __forceinline__ int64_t first() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t stride() { return int64_t(gridDim.x) * blockDim.x; }

}  // namespace vec
}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
