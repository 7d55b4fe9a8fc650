// Token embedding gather and its gradient (ops/embedding.h), and the row scatters that put the vision features
// into the <|image_pad|> rows and the latent states into the <|lvr|> rows of the input embeddings (trainer.cc
// steps 1-2), with their backward.
//
// The embedding gradient is a scatter-add with repeated ids. Rather than float atomics (order-dependent) or a
// sort, the block of token t first checks whether t is the id's first occurrence; only that block adds the id's
// rows, in token order, each thread owning a set of columns. That is the CPU op's exact sequence of additions,
// so the result is bit-identical to it. The rows of an id are found by an ordered block compaction of the ids.
#include "cuda/kernels/common.cuh"
#include "cuda/kernels/elementwise_vec.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kThreads = 256;
constexpr int kScanThreads = 1024;  // token_rows / index_check: one block (__launch_bounds__: <= 64 registers)

// Exclusive prefix sum of `flag` over the block (1-D, blockDim.x a multiple of 32); *total gets the sum.
// `warp_tot` is a __shared__ int[32]. Ends with a barrier, so it can be called again at once.
__device__ __forceinline__ int block_exclusive_scan(int flag, int* warp_tot, int* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  int x = flag;
  for (int o = 1; o < 32; o <<= 1) {
    const int y = __shfl_up_sync(dev::kFullMask, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) warp_tot[warp] = x;
  __syncthreads();
  if (warp == 0) {
    int w = lane < nwarps ? warp_tot[lane] : 0;
    for (int o = 1; o < 32; o <<= 1) {
      const int y = __shfl_up_sync(dev::kFullMask, w, o);
      if (lane >= o) w += y;
    }
    warp_tot[lane] = w;  // inclusive over warps
  }
  __syncthreads();
  const int base = warp ? warp_tot[warp - 1] : 0;
  *total = warp_tot[nwarps - 1];
  __syncthreads();
  return base + x - flag;
}

__global__ void __launch_bounds__(kScanThreads) index_check_kernel(int32_t* first_bad, const int32_t* idx, int64_t n, int64_t lo, int64_t hi) {
  __shared__ int64_t first;
  if (threadIdx.x == 0) first = n;
  __syncthreads();
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    if (idx[i] < lo || idx[i] >= hi) {
      atomicMin(reinterpret_cast<unsigned long long*>(&first), static_cast<unsigned long long>(i));
      break;  // later positions of this thread cannot be smaller
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) *first_bad = first == n ? -1 : int32_t(first);
}

template <class T>
__global__ void embedding_forward_kernel(T* out, const int32_t* ids, const T* table, int64_t V, int64_t C) {
  const int64_t t = blockIdx.x;
  const int32_t id = ids[t];
  const bool ok = id >= 0 && id < V;
  T* y = out + t * C;
  const T* row = table + (ok ? int64_t(id) * C : 0);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) y[c] = ok ? row[c] : dev::from_f32<T>(0.f);
}

// The 16-byte path (C * sizeof(T) a multiple of 16, out / table 16-byte aligned): the same rows, bit-copied in
// 16-byte units; an id out of range gives a zero row, as above (+0.0 is all-zero bits in fp32 and bf16).
template <class T>
__global__ void embedding_forward_vec_kernel(T* out, const int32_t* ids, const T* table, int64_t V, int64_t C) {
  const int64_t t = blockIdx.x;
  const int32_t id = ids[t];
  const bool ok = id >= 0 && id < V;
  const int64_t units = C * int64_t(sizeof(T)) / 16;
  const char* from = reinterpret_cast<const char*>(table + (ok ? int64_t(id) * C : 0));
  char* to = reinterpret_cast<char*>(out + t * C);
  for (int64_t u = threadIdx.x; u < units; u += blockDim.x)
    mma::vector_store(to + 16 * u, ok ? mma::vector_load<uint4>(from + 16 * u, "16-byte gather load") : make_uint4(0, 0, 0, 0),
                      "16-byte gather store");
}

// Block t: return unless t is the first occurrence of its id; else dtable[id] += dout[t'] for every t' >= t with
// that id, in order (chunks of blockDim ids compacted into shared memory, then each thread adds its columns).
template <class T>
__global__ void embedding_backward_kernel(float* dtable, const T* dout, const int32_t* ids, int64_t T_, int64_t V,
                                          int64_t C) {
  using namespace dev;
  __shared__ int warp_tot[32];
  __shared__ int32_t seen_before;
  CUDA_DYNAMIC_SHARED(int32_t, rows);  // [blockDim.x]
  const int64_t t = blockIdx.x;
  const int32_t id = ids[t];
  if (id < 0 || id >= V) return;  // uniform over the block
  if (threadIdx.x == 0) seen_before = 0;
  __syncthreads();
  for (int64_t u = threadIdx.x; u < t; u += blockDim.x)
    if (ids[u] == id) {
      atomicMax(&seen_before, 1);
      break;
    }
  __syncthreads();
  if (seen_before) return;  // uniform
  float* drow = dtable + int64_t(id) * C;
  for (int64_t u0 = t; u0 < T_; u0 += blockDim.x) {
    const int64_t u = u0 + threadIdx.x;
    const int flag = u < T_ && ids[u] == id;
    int count = 0;
    const int pos = block_exclusive_scan(flag, warp_tot, &count);
    if (flag) rows[pos] = int32_t(u);
    __syncthreads();
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      float v = drow[c];
      for (int k = 0; k < count; k++) v += to_f32(dout[int64_t(rows[k]) * C + c]);
      drow[c] = v;
    }
    __syncthreads();  // rows consumed
  }
}

__global__ void __launch_bounds__(kScanThreads) token_rows_kernel(int32_t* rows, int32_t* count, const int32_t* ids, int64_t T_, int32_t token_id,
                                  int64_t max_rows) {
  __shared__ int warp_tot[32];
  int64_t base = 0;
  for (int64_t i0 = 0; i0 < T_; i0 += blockDim.x) {
    const int64_t i = i0 + threadIdx.x;
    const int flag = i < T_ && ids[i] == token_id;
    int total = 0;
    const int64_t pos = base + block_exclusive_scan(flag, warp_tot, &total);
    if (flag && pos < max_rows) rows[pos] = int32_t(i);
    base += total;
  }
  if (threadIdx.x == 0) *count = int32_t(base);
}

template <class T>
__global__ void scatter_rows_kernel(T* x, const T* src, const int32_t* rows, int64_t D, int64_t T_) {
  const int64_t i = blockIdx.x;
  const int32_t r = rows[i];
  if (r < 0 || r >= T_) return;
  for (int64_t c = threadIdx.x; c < D; c += blockDim.x) x[int64_t(r) * D + c] = src[i * D + c];
}

// 16-byte paths of the two scatters (D a multiple of 8, x / src / dsrc / dx 16-byte aligned): chunks of 8 columns,
// the same per-element values (a copy; dsrc + dx, then dx = 0).
template <class T>
__global__ void scatter_rows_vec_kernel(T* x, const T* src, const int32_t* rows, int64_t D, int64_t T_) {
  const int64_t i = blockIdx.x;
  const int32_t r = rows[i];
  if (r < 0 || r >= T_) return;
  // A bit copy: 16-byte units of the row (D * sizeof(T) is a multiple of 16).
  const int64_t units = D * int64_t(sizeof(T)) / 16;
  const char* from = reinterpret_cast<const char*>(src + i * D);
  char* to = reinterpret_cast<char*>(x + int64_t(r) * D);
  for (int64_t u = threadIdx.x; u < units; u += blockDim.x)
    mma::vector_store(to + 16 * u, mma::vector_load<uint4>(from + 16 * u, "16-byte scatter load"), "16-byte scatter store");
}

template <class T>
__global__ void scatter_rows_backward_vec_kernel(T* dsrc, T* dx, const int32_t* rows, int64_t D, int64_t T_) {
  using namespace dev;
  const int64_t i = blockIdx.x;
  const int32_t r = rows[i];
  if (r < 0 || r >= T_) return;
  for (int64_t c = int64_t(threadIdx.x) * vec::kN; c < D; c += int64_t(blockDim.x) * vec::kN) {
    T* g = dx + int64_t(r) * D + c;
    float gv[vec::kN];
    vec::load8(g, gv);
    if (dsrc) {
      float sv[vec::kN];
      vec::load8(dsrc + i * D + c, sv);
      VR_UNROLL for (int j = 0; j < vec::kN; j++) sv[j] = sv[j] + gv[j];
      vec::store8(dsrc + i * D + c, sv);
    }
    float zero[vec::kN] = {};
    vec::store8(g, zero);
  }
}

template <class T>
__global__ void scatter_rows_backward_kernel(T* dsrc, T* dx, const int32_t* rows, int64_t D, int64_t T_) {
  using namespace dev;
  const int64_t i = blockIdx.x;
  const int32_t r = rows[i];
  if (r < 0 || r >= T_) return;
  for (int64_t c = threadIdx.x; c < D; c += blockDim.x) {
    T* g = dx + int64_t(r) * D + c;
    if (dsrc) dsrc[i * D + c] = from_f32<T>(to_f32(dsrc[i * D + c]) + to_f32(*g));
    *g = from_f32<T>(0.f);
  }
}

void check_rows(int64_t n, const char* op) {
  VR_CHECK(n >= 0 && n <= 0x7fffffff, "cuda ", op, ": bad row count ", n);
}

template <class T, class S>
void embedding_forward_impl(S* out, const int32_t* ids, int64_t T_, const S* table, int64_t V, int64_t C, Stream s) {
  VR_CHECK(T_ >= 0 && V > 0 && C > 0, "cuda embedding_forward: bad shape T=", T_, " V=", V, " C=", C);
  check_rows(T_, "embedding_forward");
  if (T_ == 0) return;
  VR_CHECK(out && ids && table, "cuda embedding_forward: null buffer");
  if (C % vec::kN == 0 && vec::usable(out, table)) {
    check_launch(cuda_launch(embedding_forward_vec_kernel<T>, dim3(unsigned(T_)), dim3(kThreads), 0, s, dptr(out), ids,
                             dptr(table), V, C),
                 "embedding_forward (16-byte)");
    return;
  }
  check_launch(cuda_launch(embedding_forward_kernel<T>, dim3(unsigned(T_)), dim3(kThreads), 0, s, dptr(out), ids,
                           dptr(table), V, C),
               "embedding_forward");
}

template <class T, class S>
void embedding_backward_impl(float* dtable, const S* dout, const int32_t* ids, int64_t T_, int64_t V, int64_t C,
                             Stream s) {
  VR_CHECK(T_ >= 0 && V > 0 && C > 0, "cuda embedding_backward: bad shape T=", T_, " V=", V, " C=", C);
  check_rows(T_, "embedding_backward");
  if (T_ == 0) return;
  VR_CHECK(dtable && dout && ids, "cuda embedding_backward: null buffer");
  check_launch(cuda_launch(embedding_backward_kernel<T>, dim3(unsigned(T_)), dim3(kThreads),
                           sizeof(int32_t) * kThreads, s, dtable, dptr(dout), ids, T_, V, C),
               "embedding_backward");
}

template <class T, class S>
void scatter_rows_impl(S* x, const S* src, const int32_t* rows, int64_t n, int64_t D, int64_t T_, Stream s) {
  VR_CHECK(D > 0 && T_ >= 0, "cuda scatter_rows: bad shape D=", D, " T=", T_);
  check_rows(n, "scatter_rows");
  if (n == 0) return;
  VR_CHECK(x && src && rows, "cuda scatter_rows: null buffer");
  if (D % vec::kN == 0 && vec::usable(x, src)) {
    check_launch(cuda_launch(scatter_rows_vec_kernel<T>, dim3(unsigned(n)), dim3(kThreads), 0, s, dptr(x), dptr(src),
                             rows, D, T_),
                 "scatter_rows (16-byte)");
    return;
  }
  check_launch(cuda_launch(scatter_rows_kernel<T>, dim3(unsigned(n)), dim3(kThreads), 0, s, dptr(x), dptr(src), rows,
                           D, T_),
               "scatter_rows");
}

template <class T, class S>
void scatter_rows_backward_impl(S* dsrc, S* dx, const int32_t* rows, int64_t n, int64_t D, int64_t T_, Stream s) {
  VR_CHECK(D > 0 && T_ >= 0, "cuda scatter_rows_backward: bad shape D=", D, " T=", T_);
  check_rows(n, "scatter_rows_backward");
  if (n == 0) return;
  VR_CHECK(dx && rows, "cuda scatter_rows_backward: null dx or rows");
  if (D % vec::kN == 0 && vec::usable(dsrc, dx)) {
    check_launch(cuda_launch(scatter_rows_backward_vec_kernel<T>, dim3(unsigned(n)), dim3(kThreads), 0, s, dptr(dsrc),
                             dptr(dx), rows, D, T_),
                 "scatter_rows_backward (16-byte)");
    return;
  }
  check_launch(cuda_launch(scatter_rows_backward_kernel<T>, dim3(unsigned(n)), dim3(kThreads), 0, s, dptr(dsrc),
                           dptr(dx), rows, D, T_),
               "scatter_rows_backward");
}

}  // namespace

void index_check(int32_t* first_bad, const int32_t* idx, int64_t n, int64_t lo, int64_t hi, Stream s) {
  check_rows(n, "index_check");
  VR_CHECK(first_bad && (n == 0 || idx), "cuda index_check: null buffer");
  check_launch(cuda_launch(index_check_kernel, dim3(1), dim3(kScanThreads), 0, s, first_bad, idx, n, lo, hi),
               "index_check");
}

void embedding_forward(float* out, const int32_t* ids, int64_t T, const float* table, int64_t V, int64_t C,
                       Stream s) {
  embedding_forward_impl<float>(out, ids, T, table, V, C, s);
}
void embedding_forward(bf16* out, const int32_t* ids, int64_t T, const bf16* table, int64_t V, int64_t C, Stream s) {
  embedding_forward_impl<__nv_bfloat16>(out, ids, T, table, V, C, s);
}
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t T, int64_t V, int64_t C,
                        Stream s) {
  embedding_backward_impl<float>(dtable, dout, ids, T, V, C, s);
}
void embedding_backward(float* dtable, const bf16* dout, const int32_t* ids, int64_t T, int64_t V, int64_t C,
                        Stream s) {
  embedding_backward_impl<__nv_bfloat16>(dtable, dout, ids, T, V, C, s);
}

void token_rows(int32_t* rows, int32_t* count, const int32_t* ids, int64_t T, int32_t token_id, int64_t max_rows,
                Stream s) {
  check_rows(T, "token_rows");
  VR_CHECK(max_rows >= 0, "cuda token_rows: negative max_rows ", max_rows);
  VR_CHECK(count && (T == 0 || ids) && (max_rows == 0 || rows), "cuda token_rows: null buffer");
  check_launch(cuda_launch(token_rows_kernel, dim3(1), dim3(kScanThreads), 0, s, rows, count, ids, T, token_id,
                           max_rows),
               "token_rows");
}

void scatter_rows(float* x, const float* src, const int32_t* rows, int64_t n, int64_t D, int64_t T, Stream s) {
  scatter_rows_impl<float>(x, src, rows, n, D, T, s);
}
void scatter_rows(bf16* x, const bf16* src, const int32_t* rows, int64_t n, int64_t D, int64_t T, Stream s) {
  scatter_rows_impl<__nv_bfloat16>(x, src, rows, n, D, T, s);
}
void scatter_rows_backward(float* dsrc, float* dx, const int32_t* rows, int64_t n, int64_t D, int64_t T, Stream s) {
  scatter_rows_backward_impl<float>(dsrc, dx, rows, n, D, T, s);
}
void scatter_rows_backward(bf16* dsrc, bf16* dx, const int32_t* rows, int64_t n, int64_t D, int64_t T, Stream s) {
  scatter_rows_backward_impl<__nv_bfloat16>(dsrc, dx, rows, n, D, T, s);
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
