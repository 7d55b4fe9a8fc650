// The latent losses of V-Reflection (train/latent_losses.cc; method.md §8.3, §9.3, §10.1), values and gradients
// in separate launches because the trainer needs every value (and its clamps) before it weights the gradients.
//
// Values: each block sums its elements in fp64 (the CPU sums in fp64 too) and writes one partial; a single
// block then adds the partials in a fixed order. The grid size depends on n only, so a value is bit-identical
// from run to run; no float atomics anywhere.
//
// KL attention transfer: the teacher map of box b is scattered to student positions by assignment, so a
// position's teacher column is the LAST of the box's tokens that names it. A position -> token map built with
// an integer atomicMax (order-independent, hence deterministic) reproduces that without materialising the
// scattered map; a box whose indices are invalid (the CPU throws) is flagged and skipped.
#include "cuda/kernels/common.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 256;  // partial sums per value launch
constexpr float kClamp = 1e4f;
constexpr double kKlEps = 1e-9;

__device__ __forceinline__ bool finite(float x) { return fabsf(x) <= 3.402823466e38f; }  // false for NaN, inf
__device__ __forceinline__ float clampf(float x) { return fminf(kClamp, fmaxf(-kClamp, x)); }
__device__ __forceinline__ bool inside(float x) { return x >= -kClamp && x <= kClamp; }

// ---- align (stage 1) and MSE (stage 2): sum of squared differences and the count of non-finite inputs -------
template <class T, bool kAlign>
__global__ void pair_partials_kernel(double* part_sum, double* part_nonfinite, const T* a, const T* b, int64_t n) {
  using namespace dev;
  __shared__ double scratch[32];
  double s = 0.0, bad = 0.0;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = to_f32(a[i]), y = to_f32(b[i]);
    bad += double(!finite(x)) + double(!finite(y));
    const double d = kAlign ? double(clampf(x)) - double(clampf(y)) : double(x) - double(y);
    s += d * d;
  }
  s = block_sum(s, scratch);
  bad = block_sum(bad, scratch);
  if (threadIdx.x == 0) {
    part_sum[blockIdx.x] = s;
    part_nonfinite[blockIdx.x] = bad;
  }
}

// out = sum(part_sum) / divisor in a fixed order. part_nonfinite (pair losses) or box_bad (KL, first flagged box
// reported) may be null; either kind of problem makes the value NaN.
__global__ void finalize_kernel(LossValue* out, const double* part_sum, const double* part_nonfinite,
                                const int32_t* box_bad, int64_t parts, double divisor) {
  __shared__ double scratch[32];
  __shared__ int32_t first_bad;
  if (threadIdx.x == 0) first_bad = 0x7fffffff;
  double s = 0.0, nonfinite = 0.0;
  for (int64_t p = threadIdx.x; p < parts; p += blockDim.x) {
    s += part_sum[p];
    if (part_nonfinite) nonfinite += part_nonfinite[p];
  }
  __syncthreads();  // first_bad initialised
  if (box_bad)
    for (int64_t p = threadIdx.x; p < parts; p += blockDim.x)
      if (box_bad[p]) atomicMin(&first_bad, int32_t(p));  // integer min: order-independent
  s = dev::block_sum(s, scratch);
  nonfinite = dev::block_sum(nonfinite, scratch);  // its barriers also publish first_bad
  if (threadIdx.x == 0) {
    const bool flagged = nonfinite > 0.0 || first_bad != 0x7fffffff;
    out->value = flagged ? nan("") : s / divisor;
    out->nonfinite = int32_t(nonfinite < 2147483647.0 ? nonfinite : 2147483647.0);
    out->bad = first_bad == 0x7fffffff ? -1 : first_bad;
  }
}

// dH += w/n (Hc - Zc) inside H's clamp, dZ -= the same inside Z's (torch's clamp gradient passes lo <= x <= hi).
template <class T>
__global__ void align_grad_kernel(T* dH, T* dZ, const T* H, const T* Z, int64_t n, float k) {
  using namespace dev;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float h = to_f32(H[i]), z = to_f32(Z[i]);
    const float d = clampf(h) - clampf(z);
    if (dH && inside(h)) dH[i] = from_f32<T>(to_f32(dH[i]) + k * d);
    if (dZ && inside(z)) dZ[i] = from_f32<T>(to_f32(dZ[i]) - k * d);
  }
}

template <class T>
__global__ void mse_grad_kernel(T* da, const T* a, const T* b, int64_t n, float k) {
  using namespace dev;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    da[i] = from_f32<T>(to_f32(da[i]) + k * (to_f32(a[i]) - to_f32(b[i])));
}

// ---- KL attention transfer --------------------------------------------------------------------------------
// Box b's maps, its student-position range in the map and its validity (uniform over the block).
struct Box {
  int64_t a0, t0, S, N, pos0;
  bool ok;
};
__device__ __forceinline__ Box box_of(const KlArgs& t, int64_t b) {
  Box x;
  x.a0 = t.a_off[b];
  x.t0 = t.t_off[b];
  const int64_t sa = t.a_off[b + 1] - x.a0, st = t.t_off[b + 1] - x.t0;
  x.S = sa / t.nq;
  x.N = st / t.nq;
  x.pos0 = x.a0 / t.nq;
  x.ok = x.a0 >= 0 && sa >= 0 && st >= 0 && x.t0 >= 0 && x.a0 % t.nq == 0 && sa % t.nq == 0 && st % t.nq == 0 &&
         t.a_off[b + 1] <= t.a_total && int64_t(t.cu_box[b + 1]) - t.cu_box[b] == x.N;
  return x;
}

// tok[pos0 + s] = the last token j of box b with local_idx = s (or -1); box_bad[b] = 1 when an index is outside
// [0, S_b) or the sizes disagree. One block per box.
__global__ void kl_map_kernel(int32_t* tok, int32_t* box_bad, KlArgs t) {
  __shared__ int32_t bad;
  const int64_t b = blockIdx.x;
  const Box x = box_of(t, b);
  if (threadIdx.x == 0) bad = x.ok ? 0 : 1;
  if (x.ok) {
    for (int64_t s = threadIdx.x; s < x.S; s += blockDim.x) tok[x.pos0 + s] = -1;
    __syncthreads();
    const int32_t* idx = t.local_idx + t.cu_box[b];
    for (int64_t j = threadIdx.x; j < x.N; j += blockDim.x) {
      const int32_t s = idx[j];
      if (s >= 0 && s < x.S)
        atomicMax(&tok[x.pos0 + s], int32_t(j));
      else
        atomicMax(&bad, 1);
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) box_bad[b] = bad;
}

// The scattered teacher value T at element e = q * S + s of box b (0 where no token lands).
__device__ __forceinline__ float teacher_at(const KlArgs& t, const Box& x, const int32_t* tok, int64_t e) {
  const int64_t q = e / x.S, s = e % x.S;
  const int32_t j = tok[x.pos0 + s];
  return j >= 0 ? t.At[x.t0 + q * x.N + j] : 0.f;
}

// part[b] = sum_e T (log T - log(A + eps)) over T > 0, in fp64 as on the CPU. One block per box.
__global__ void kl_value_kernel(double* part, const int32_t* tok, const int32_t* box_bad, KlArgs t) {
  __shared__ double scratch[32];
  const int64_t b = blockIdx.x;
  double s = 0.0;
  if (!box_bad[b]) {
    const Box x = box_of(t, b);
    for (int64_t e = threadIdx.x; e < int64_t(t.nq) * x.S; e += blockDim.x) {
      const float T = teacher_at(t, x, tok, e);
      if (T > 0.f) s += double(T) * (log(double(T)) - log(double(t.A[x.a0 + e]) + kKlEps));
    }
  }
  s = dev::block_sum(s, scratch);
  if (threadIdx.x == 0) part[b] = s;
}

// dA += -w T / (A + eps) / nb over T > 0 (the CPU's fp64 expression). One block per box; boxes own disjoint dA.
__global__ void kl_grad_kernel(float* dA, const int32_t* tok, const int32_t* box_bad, KlArgs t, float w) {
  const int64_t b = blockIdx.x;
  if (box_bad[b]) return;
  const Box x = box_of(t, b);
  for (int64_t e = threadIdx.x; e < int64_t(t.nq) * x.S; e += blockDim.x) {
    const float T = teacher_at(t, x, tok, e);
    if (T > 0.f)
      dA[x.a0 + e] -= float(double(w) * double(T) / (double(t.A[x.a0 + e]) + kKlEps) / double(t.nb));
  }
}

// ---- host side ----------------------------------------------------------------------------------------------
unsigned value_blocks(int64_t n) { return grid_for(n, kThreads * 4, kMaxBlocks); }

template <class T, bool kAlign, class S>
void pair_value(LossValue* out, const S* a, const S* b, int64_t n, Stream s, const char* op) {
  VR_CHECK(n >= 0, "cuda ", op, ": negative size ", n);
  VR_CHECK(out && (n == 0 || (a && b)), "cuda ", op, ": null buffer");
  const unsigned blocks = value_blocks(n);
  const StreamScratch<double> scratch(2 * size_t(blocks), s, op);
  double* part_sum = scratch.p;
  double* part_bad = part_sum + blocks;
  check_launch(cuda_launch(pair_partials_kernel<T, kAlign>, dim3(blocks), dim3(kThreads), 0, s, part_sum, part_bad,
                           dptr(a), dptr(b), n),
               op);
  check_launch(cuda_launch(finalize_kernel, dim3(1), dim3(kThreads), 0, s, out, part_sum, part_bad,
                           static_cast<const int32_t*>(nullptr), int64_t(blocks), double(n ? n : 1)),
               op);
}

template <class T, class S>
void align_grad_impl(S* dH, S* dZ, const S* H, const S* Z, int64_t n, float w, Stream s) {
  VR_CHECK(n >= 0, "cuda align_grad: negative size ", n);
  if (n == 0 || w == 0.f || (!dH && !dZ)) return;
  VR_CHECK(H && Z, "cuda align_grad: null H or Z");
  check_launch(cuda_launch(align_grad_kernel<T>, dim3(grid_for(n, kThreads)), dim3(kThreads), 0, s, dptr(dH),
                           dptr(dZ), dptr(H), dptr(Z), n, w / float(n)),
               "align_grad");
}

template <class T, class S>
void mse_grad_impl(S* da, const S* a, const S* b, int64_t n, float w, Stream s) {
  VR_CHECK(n >= 0, "cuda mse_grad: negative size ", n);
  if (n == 0 || w == 0.f) return;
  VR_CHECK(da && a && b, "cuda mse_grad: null buffer");
  check_launch(cuda_launch(mse_grad_kernel<T>, dim3(grid_for(n, kThreads)), dim3(kThreads), 0, s, dptr(da), dptr(a),
                           dptr(b), n, 2.f * w / float(n)),
               "mse_grad");
}

void check_kl(const KlArgs& t, const char* op) {
  VR_CHECK(t.nb >= 0 && t.nb <= 0x7fffffff, "cuda ", op, ": bad box count ", t.nb);
  if (t.nb == 0) return;
  VR_CHECK(t.nq > 0, "cuda ", op, ": nq must be > 0 (got ", t.nq, ")");
  VR_CHECK(t.a_total >= 0, "cuda ", op, ": negative a_total ", t.a_total);
  VR_CHECK(t.A && t.a_off && t.At && t.t_off && t.local_idx && t.cu_box, "cuda ", op, ": null map or index array");
}

// Builds the position -> token map; returns {tok, box_bad} inside `scratch` (sized by kl_scratch_bytes).
size_t kl_scratch_bytes(const KlArgs& t) {
  return sizeof(int32_t) * size_t(t.a_total / t.nq + 1 + t.nb) + sizeof(double) * size_t(t.nb) + 16;
}
void kl_map(const KlArgs& t, unsigned char* scratch, int32_t*& tok, int32_t*& box_bad, double*& part, Stream s,
            const char* op) {
  part = reinterpret_cast<double*>(scratch);  // first, for alignment
  tok = reinterpret_cast<int32_t*>(part + t.nb);
  box_bad = tok + t.a_total / t.nq + 1;
  check_launch(cuda_launch(kl_map_kernel, dim3(unsigned(t.nb)), dim3(kThreads), 0, s, tok, box_bad, t), op);
}

}  // namespace

void align_value(LossValue* out, const float* H, const float* Z, int64_t n, Stream s) {
  pair_value<float, true>(out, H, Z, n, s, "align_value");
}
void align_value(LossValue* out, const bf16* H, const bf16* Z, int64_t n, Stream s) {
  pair_value<__nv_bfloat16, true>(out, H, Z, n, s, "align_value");
}
void align_grad(float* dH, float* dZ, const float* H, const float* Z, int64_t n, float w, Stream s) {
  align_grad_impl<float>(dH, dZ, H, Z, n, w, s);
}
void align_grad(bf16* dH, bf16* dZ, const bf16* H, const bf16* Z, int64_t n, float w, Stream s) {
  align_grad_impl<__nv_bfloat16>(dH, dZ, H, Z, n, w, s);
}
void mse_value(LossValue* out, const float* a, const float* b, int64_t n, Stream s) {
  pair_value<float, false>(out, a, b, n, s, "mse_value");
}
void mse_value(LossValue* out, const bf16* a, const bf16* b, int64_t n, Stream s) {
  pair_value<__nv_bfloat16, false>(out, a, b, n, s, "mse_value");
}
void mse_grad(float* da, const float* a, const float* b, int64_t n, float w, Stream s) {
  mse_grad_impl<float>(da, a, b, n, w, s);
}
void mse_grad(bf16* da, const bf16* a, const bf16* b, int64_t n, float w, Stream s) {
  mse_grad_impl<__nv_bfloat16>(da, a, b, n, w, s);
}

void kl_value(LossValue* out, const KlArgs& t, Stream s) {
  check_kl(t, "kl_value");
  VR_CHECK(out, "cuda kl_value: null out");
  const StreamScratch<unsigned char> scratch(t.nb ? kl_scratch_bytes(t) : 16, s, "kl_value scratch");
  int32_t *tok = nullptr, *box_bad = nullptr;
  double* part = nullptr;
  if (t.nb > 0) {
    kl_map(t, scratch.p, tok, box_bad, part, s, "kl_value map");
    check_launch(cuda_launch(kl_value_kernel, dim3(unsigned(t.nb)), dim3(kThreads), 0, s, part,
                             static_cast<const int32_t*>(tok), static_cast<const int32_t*>(box_bad), t),
                 "kl_value");
  }
  check_launch(cuda_launch(finalize_kernel, dim3(1), dim3(kThreads), 0, s, out, static_cast<const double*>(part),
                           static_cast<const double*>(nullptr), static_cast<const int32_t*>(box_bad), t.nb,
                           double(t.nb ? t.nb : 1)),
               "kl_value");
}

void kl_grad(float* dA, const KlArgs& t, float w, Stream s) {
  check_kl(t, "kl_grad");
  if (t.nb == 0 || w == 0.f) return;
  VR_CHECK(dA, "cuda kl_grad: null dA");
  const StreamScratch<unsigned char> scratch(kl_scratch_bytes(t), s, "kl_grad scratch");
  int32_t *tok = nullptr, *box_bad = nullptr;
  double* part = nullptr;
  kl_map(t, scratch.p, tok, box_bad, part, s, "kl_grad map");
  check_launch(cuda_launch(kl_grad_kernel, dim3(unsigned(t.nb)), dim3(kThreads), 0, s, dA,
                           static_cast<const int32_t*>(tok), static_cast<const int32_t*>(box_bad), t, w),
               "kl_grad");
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
