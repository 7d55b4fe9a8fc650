// Our own GEMM (gemm.h): C[m,n] = op(A) op(B) (+ bias) (+ C), bf16 in, fp32 accumulate, fp32 or bf16 out.
// Two paths over the same tiling idea (a block owns a tile of C, walks k in steps, stages both operand tiles in
// shared memory, then every thread accumulates its own outputs from shared memory):
//   scalar       64 x 64 tile, k step 16, 256 threads each owning 4 x 4 outputs, fp32 FMA on CUDA cores. The
//                path the CPU emulator runs and the tests check against the CPU linear_forward / backward.
//   tensor-core  128 x 128 tile, k step 32, 8 warps each owning 64 x 32 outputs as 4 x 4 mma.sync.m16n8k16
//                bf16 tiles (fp32 accumulators). Inline PTX for __CUDA_ARCH__ >= 800; on the CPU emulator the one
//                mma instruction is modelled from the PTX ISA's fragment layout, so everything around it is
//                tested there too (the PTX itself only on a GPU). No cp.async pipelining or ldmatrix yet.
// Both stage tiles "k-contiguous" where they can and load global memory along whichever dimension is contiguous
// there, so all three Linear layouts (forward, dinp, dweight) read coalesced. Any m, n, k and strides work:
// out-of-range elements are loaded as zeros and never stored.
#include <type_traits>

#include "cuda/kernels/common.cuh"
#include "cuda/kernels/gemm.h"
#include "cuda/kernels/mma.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

GemmArgs linear_forward_args(int64_t M, int64_t N, int64_t K, const float* bias, bool accumulate) {
  GemmArgs g;
  g.m = M, g.n = N, g.k = K, g.trans_b = true, g.bias = bias, g.accumulate = accumulate;
  return g;
}
GemmArgs linear_backward_input_args(int64_t M, int64_t N, int64_t K) {
  GemmArgs g;
  g.m = M, g.n = K, g.k = N, g.accumulate = true;
  return g;
}
GemmArgs linear_backward_weight_args(int64_t M, int64_t N, int64_t K) {
  GemmArgs g;
  g.m = N, g.n = K, g.k = M, g.trans_a = true, g.accumulate = true;
  return g;
}

GemmArgs checked_gemm_args(const GemmArgs& g) {
  VR_CHECK(g.m >= 0 && g.n >= 0 && g.k >= 0, "gemm: negative size m=", g.m, " n=", g.n, " k=", g.k);
  GemmArgs r = g;
  r.lda = g.lda ? g.lda : (g.trans_a ? g.m : g.k);
  r.ldb = g.ldb ? g.ldb : (g.trans_b ? g.k : g.n);
  r.ldc = g.ldc ? g.ldc : g.n;
  VR_CHECK(r.lda >= (g.trans_a ? g.m : g.k) && r.ldb >= (g.trans_b ? g.k : g.n) && r.ldc >= g.n,
           "gemm: a row stride is smaller than its row (lda=", r.lda, " ldb=", r.ldb, " ldc=", r.ldc, ")");
  return r;
}

namespace {

// Element (r, kk) of an operand seen as [rows, k]: A as op(A) [m, k]; B as op(B)^T [n, k]. k_contig says the
// memory is [rows, k] (stride ld between rows) rather than [k, rows].
__device__ __forceinline__ int64_t operand_index(bool k_contig, int64_t ld, int64_t r, int64_t kk) {
  return k_contig ? r * ld + kk : kk * ld + r;
}

template <class TC>
__device__ __forceinline__ void store_out(TC* C, const GemmArgs& p, int64_t r, int64_t c, float v) {
  using namespace dev;
  if (r >= p.m || c >= p.n) return;
  TC* dst = C + r * p.ldc + c;
  if (p.bias) v += p.bias[c];
  if (p.accumulate) v += to_f32(*dst);
  *dst = from_f32<TC>(v);
}

// ---- scalar path ----------------------------------------------------------------------------------------
constexpr int kSBM = 64, kSBN = 64, kSBK = 16, kSThreads = 256;

// S[kk][r] = operand(r0 + r, k0 + kk) as fp32 (0 outside [rows, k]); ROWS x kSBK elements. Consecutive threads
// take consecutive elements along the dimension that is contiguous in memory.
template <int ROWS>
__device__ __forceinline__ void load_scalar_tile(float (*S)[ROWS + 4], const __nv_bfloat16* X, bool k_contig,
                                                 int64_t ld, int64_t r0, int64_t rows, int64_t k0, int64_t k) {
  using namespace dev;
  for (int i = threadIdx.x; i < ROWS * kSBK; i += kSThreads) {
    const int kk = k_contig ? i % kSBK : i / ROWS;
    const int r = k_contig ? i / kSBK : i % ROWS;
    const int64_t gr = r0 + r, gk = k0 + kk;
    S[kk][r] = gr < rows && gk < k ? to_f32(X[operand_index(k_contig, ld, gr, gk)]) : 0.f;
  }
}

// Thread (ty, tx) of the 16 x 16 grid owns rows ty + 16 i and columns tx + 16 j (i, j < 4): shared-memory reads
// are broadcasts (A) or consecutive (B), and the stores of a half-warp are consecutive columns.
template <class TC>
__global__ void __launch_bounds__(kSThreads)
    gemm_scalar_kernel(TC* C, const __nv_bfloat16* A, const __nv_bfloat16* B, GemmArgs p) {
  __shared__ float As[kSBK][kSBM + 4];  // As[kk][r] = op(A)[m0 + r, k0 + kk]
  __shared__ float Bs[kSBK][kSBN + 4];  // Bs[kk][c] = op(B)[k0 + kk, n0 + c]
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t m0 = int64_t(blockIdx.y) * kSBM, n0 = int64_t(blockIdx.x) * kSBN;
  float acc[4][4];
  VR_UNROLL for (int i = 0; i < 4; i++) VR_UNROLL for (int j = 0; j < 4; j++) acc[i][j] = 0.f;

  for (int64_t k0 = 0; k0 < p.k; k0 += kSBK) {
    load_scalar_tile<kSBM>(As, A, !p.trans_a, p.lda, m0, p.m, k0, p.k);
    load_scalar_tile<kSBN>(Bs, B, p.trans_b, p.ldb, n0, p.n, k0, p.k);
    __syncthreads();
    VR_UNROLL for (int kk = 0; kk < kSBK; kk++) {
      float a[4], b[4];
      VR_UNROLL for (int i = 0; i < 4; i++) a[i] = As[kk][ty + 16 * i];
      VR_UNROLL for (int j = 0; j < 4; j++) b[j] = Bs[kk][tx + 16 * j];
      VR_UNROLL for (int i = 0; i < 4; i++) VR_UNROLL for (int j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
  VR_UNROLL for (int i = 0; i < 4; i++) VR_UNROLL for (int j = 0; j < 4; j++)
      store_out(C, p, m0 + ty + 16 * i, n0 + tx + 16 * j, acc[i][j]);
}

// ---- tensor-core path -------------------------------------------------------------------------------------
constexpr int kTBM = 128, kTBN = 128, kTBK = 32, kTThreads = 256;
constexpr int kTLd = kTBK + 8;  // bf16 per smem row: 80 bytes, so the 8 rows a fragment load touches hit 8
                                // different bank groups, and 16-byte chunks stay aligned

// bf16 ("bf16_from_bits", "ld_pair", 16-byte moves) and the mma instruction (modelled on the CPU emulator) come
// from mma.cuh; VR_MMA_AVAILABLE says the tensor-core path is compiled (sm_80+ GPUs and the emulator).
#if defined(VR_MMA_AVAILABLE)
using namespace mma;

// S[r][kk] = operand(r0 + r, k0 + kk) (0 outside). 16-byte vector loads when the contiguous dimension allows
// (stride and base 16-byte aligned, chunk fully inside); a chunk along rows is scattered into the k-major tile.
template <int ROWS>
__device__ __forceinline__ void load_tc_tile(__nv_bfloat16 (*S)[kTLd], const __nv_bfloat16* X, bool k_contig,
                                             int64_t ld, bool vec_ok, int64_t r0, int64_t rows, int64_t k0,
                                             int64_t k) {
  const __nv_bfloat16 zero = __float2bfloat16(0.f);
  constexpr int kChunks = ROWS * kTBK / 8;
  for (int c = threadIdx.x; c < kChunks; c += kTThreads) {
    // k_contig: chunk = 8 consecutive kk of one row; otherwise 8 consecutive rows at one kk.
    // k_contig order: a quarter-warp's 8 chunks (one 16-byte store phase) are rows q and q + 4 of a group of 8 rows:
    // 4 * 80 bytes apart = 64 mod 128, so their 8 chunks fill the 8 bank groups of a 128-byte line (rows q, q + 1
    // wrap onto the first chunk: a 2-way conflict on every store, seen by the emulator's bank accounting).
    // Otherwise (8 rows r .. r + 7 at one kk, scattered into 8 2-byte stores S[r + j][kk]): 8-row groups lie
    // 640 bytes = 0 mod 128 apart, so a store's bank depends on kk only, and 16 row groups x 2 kk per warp (the
    // earlier order) was a 16-way conflict on each of the 8 stores. A warp now takes 2 row groups x 16 kk, the two
    // groups on different kk halves (8 words each: 16 banks, lanes 2m, 2m + 1 share a word): conflict-free. Its
    // 16-byte global loads then read 32 rows of the operand 16 bytes each (half a 32-byte sector; the other half is
    // the neighbour row group's, read by the same thread's next trip: an L1 hit).
    static_assert(kTBK == 32 && ROWS % 16 == 0, "the chunk orders assume 32-wide k-steps and 16-row multiples");
    const int grp = c / 32, phase = (c % 32) / 8, lane8 = c % 8, half = (c % 32) / 16;
    const int r = k_contig ? 8 * grp + phase + 4 * (lane8 / 4) : 8 * (2 * (grp % (ROWS / 16)) + half);
    const int kk = k_contig ? (lane8 % 4) * 8 : 16 * (half ^ (grp / (ROWS / 16))) + c % 16;
    const int64_t gr = r0 + r, gk = k0 + kk;
    const bool full = k_contig ? (gr < rows && gk + 8 <= k) : (gk < k && gr + 8 <= rows);
    if (vec_ok && full) {
      const uint4 v = load16(X + operand_index(k_contig, ld, gr, gk));
      if (k_contig) {
        store16(&S[r][kk], v);
      } else {
        const uint32_t w[4] = {v.x, v.y, v.z, v.w};
        VR_UNROLL for (int j = 0; j < 8; j++)
            store_b16(&S[r + j][kk], bf16_from_bits(uint16_t(w[j / 2] >> (16 * (j % 2)))));
      }
    } else {
      VR_UNROLL for (int j = 0; j < 8; j++) {
        const int rr = k_contig ? r : r + j, kj = k_contig ? kk + j : kk;
        const int64_t grr = r0 + rr, gkj = k0 + kj;
        S[rr][kj] = grr < rows && gkj < k ? X[operand_index(k_contig, ld, grr, gkj)] : zero;
      }
    }
  }
}

#endif

// Warps form a 2 x 4 grid over the 128 x 128 tile; warp (wm, wn) owns rows wm*64 + [0, 64), cols wn*32 + [0, 32).
template <class TC>
__global__ void __launch_bounds__(kTThreads)
    gemm_tc_kernel(TC* C, const __nv_bfloat16* A, const __nv_bfloat16* B, GemmArgs p, bool vec_a, bool vec_b) {
#if defined(VR_MMA_AVAILABLE)
  __shared__ __align__(16) __nv_bfloat16 As[kTBM][kTLd];  // As[r][kk] = op(A)[m0 + r, k0 + kk]
  __shared__ __align__(16) __nv_bfloat16 Bs[kTBN][kTLd];  // Bs[c][kk] = op(B)[k0 + kk, n0 + c]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int wm = warp / 4, wn = warp % 4;
  const int64_t m0 = int64_t(blockIdx.y) * kTBM, n0 = int64_t(blockIdx.x) * kTBN;
  float acc[4][4][4];
  VR_UNROLL for (int i = 0; i < 4; i++) VR_UNROLL for (int j = 0; j < 4; j++) VR_UNROLL for (int e = 0; e < 4; e++)
      acc[i][j][e] = 0.f;

  for (int64_t k0 = 0; k0 < p.k; k0 += kTBK) {
    load_tc_tile<kTBM>(As, A, !p.trans_a, p.lda, vec_a, m0, p.m, k0, p.k);
    load_tc_tile<kTBN>(Bs, B, p.trans_b, p.ldb, vec_b, n0, p.n, k0, p.k);
    __syncthreads();
    VR_UNROLL for (int ks = 0; ks < kTBK; ks += 16) {
      uint32_t a[4][4], b[4][2];
      VR_UNROLL for (int i = 0; i < 4; i++) {
        const int r = wm * 64 + i * 16 + g;
        a[i][0] = ld_pair(&As[r][ks + 2 * t]);
        a[i][1] = ld_pair(&As[r + 8][ks + 2 * t]);
        a[i][2] = ld_pair(&As[r][ks + 2 * t + 8]);
        a[i][3] = ld_pair(&As[r + 8][ks + 2 * t + 8]);
      }
      VR_UNROLL for (int j = 0; j < 4; j++) {
        const int c = wn * 32 + j * 8 + g;
        b[j][0] = ld_pair(&Bs[c][ks + 2 * t]);
        b[j][1] = ld_pair(&Bs[c][ks + 2 * t + 8]);
      }
      VR_UNROLL for (int i = 0; i < 4; i++) VR_UNROLL for (int j = 0; j < 4; j++) mma_bf16_16816(acc[i][j], a[i], b[j]);
    }
    __syncthreads();
  }
  VR_UNROLL for (int i = 0; i < 4; i++) VR_UNROLL for (int j = 0; j < 4; j++) VR_UNROLL for (int e = 0; e < 4; e++) {
        const int64_t r = m0 + wm * 64 + i * 16 + g + (e >= 2 ? 8 : 0);
        const int64_t c = n0 + wn * 32 + j * 8 + 2 * t + (e & 1);
        store_out(C, p, r, c, acc[i][j][e]);
      }
#else
  // Built for an architecture without bf16 mma: the host never launches this (gemm_kernel_resolve).
  (void)C, (void)A, (void)B, (void)p, (void)vec_a, (void)vec_b;
#endif
}

// ---- bias gradient ----------------------------------------------------------------------------------------
constexpr int kBiasThreads = 256, kBiasRowsPerBlock = 256;

template <class T>
__global__ void bias_grad_kernel(float* dbias, const T* dout, int64_t M, int64_t N) {
  using namespace dev;
  const int64_t c = int64_t(blockIdx.x) * kBiasThreads + threadIdx.x;
  if (c >= N) return;
  const int64_t r0 = int64_t(blockIdx.y) * kBiasRowsPerBlock;
  const int64_t r1 = r0 + kBiasRowsPerBlock < M ? r0 + kBiasRowsPerBlock : M;
  float s = 0.f;
  for (int64_t r = r0; r < r1; r++) s += to_f32(dout[r * N + c]);
  atomicAdd(&dbias[c], s);
}

bool aligned16(const void* p, int64_t ld) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0 && ld % 8 == 0;
}

template <class TC>
void run_gemm(TC* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s, GemmKernelPath path) {
  const GemmArgs p = checked_gemm_args(g);  // the kernels take it with the strides resolved
  if (g.m == 0 || g.n == 0) return;
  VR_CHECK(C && (g.k == 0 || (A && B)), "gemm: null matrix pointer");
  const GemmKernelPath resolved = gemm_kernel_resolve(path);
  using TD = std::remove_pointer_t<decltype(dptr(C))>;  // float or __nv_bfloat16
  if (resolved == GemmKernelPath::TensorCore) {
    const int64_t gy = (g.m + kTBM - 1) / kTBM;
    VR_CHECK(gy <= 65535, "gemm: m=", g.m, " is too large for one launch (at most ", 65535 * int64_t(kTBM), ")");
    const dim3 grid(unsigned((g.n + kTBN - 1) / kTBN), unsigned(gy));
    const bool vec_a = aligned16(A, p.lda), vec_b = aligned16(B, p.ldb);
    check_launch(cuda_launch(gemm_tc_kernel<TD>, grid, dim3(kTThreads), 0, s, dptr(C),
                             dptr(A), dptr(B), p, vec_a, vec_b),
                 "gemm_tc_kernel");
  } else {
    const int64_t gy = (g.m + kSBM - 1) / kSBM;
    VR_CHECK(gy <= 65535, "gemm: m=", g.m, " is too large for one launch (at most ", 65535 * int64_t(kSBM), ")");
    const dim3 grid(unsigned((g.n + kSBN - 1) / kSBN), unsigned(gy));
    check_launch(cuda_launch(gemm_scalar_kernel<TD>, grid, dim3(kSThreads), 0, s, dptr(C),
                             dptr(A), dptr(B), p),
                 "gemm_scalar_kernel");
  }
}

template <class T>
void run_bias_grad(float* dbias, const T* dout, int64_t M, int64_t N, Stream s) {
  VR_CHECK(M >= 0 && N >= 0, "bias_grad: negative size M=", M, " N=", N);
  if (M == 0 || N == 0) return;
  VR_CHECK(dbias && dout, "bias_grad: null pointer");
  const int64_t gy = (M + kBiasRowsPerBlock - 1) / kBiasRowsPerBlock;
  VR_CHECK(gy <= 65535, "bias_grad: M=", M, " is too large for one launch");
  const dim3 grid(unsigned((N + kBiasThreads - 1) / kBiasThreads), unsigned(gy));
  using TD = std::remove_const_t<std::remove_pointer_t<decltype(dptr(dout))>>;
  check_launch(cuda_launch(bias_grad_kernel<TD>, grid,
                           dim3(kBiasThreads), 0, s, dbias, dptr(dout), M, N),
               "bias_grad_kernel");
}

}  // namespace

GemmKernelPath gemm_kernel_resolve(GemmKernelPath path) {
#if defined(VR_CUDA_EMULATED)
  // Auto stays on the scalar path; the tensor-core path runs only when asked for (with the modelled mma).
  return path == GemmKernelPath::TensorCore ? path : GemmKernelPath::Scalar;
#else
  if (path == GemmKernelPath::Scalar) return path;
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) !=
                                                 cudaSuccess) {
    (void)cudaGetLastError();
    major = 0;
  }
  if (major >= 8) return GemmKernelPath::TensorCore;
  VR_CHECK(path != GemmKernelPath::TensorCore, "gemm: the tensor-core path needs an sm_80+ GPU (this device is sm_",
           major, "x)");
  return GemmKernelPath::Scalar;
#endif
}

const char* gemm_kernel_path_name(GemmKernelPath path) {
  switch (path) {
    case GemmKernelPath::Scalar: return "scalar";
    case GemmKernelPath::TensorCore: return "tensor-core";
    default: return "auto";
  }
}

void gemm_kernel(float* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s, GemmKernelPath path) {
  run_gemm(C, A, B, g, s, path);
}
void gemm_kernel(bf16* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s, GemmKernelPath path) {
  run_gemm(C, A, B, g, s, path);
}
void bias_grad(float* dbias, const float* dout, int64_t M, int64_t N, Stream s) { run_bias_grad(dbias, dout, M, N, s); }
void bias_grad(float* dbias, const bf16* dout, int64_t M, int64_t N, Stream s) { run_bias_grad(dbias, dout, M, N, s); }

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
