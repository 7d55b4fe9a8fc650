// Skinny linear forward ("GEMV"): out[M,N] (+)= inp[M,K] @ W[N,K]^T (+ bias) for M <= kGemvMaxRows rows - the decode
// and latent steps (1 row) and the small batches of a few sequences. There the GEMM reads every weight once and does
// M multiply-adds per weight: it is bound by HBM bandwidth, and what matters is keeping many 16-byte loads of W in
// flight and wasting none of them. A tile GEMM (cuBLASLt's heuristics for m = 1 included) pads M to its tile and may
// split K; this kernel streams W once, row by row:
//   - a warp owns kGemvRowsPerWarp consecutive rows of W (output columns n); its 32 lanes walk K in 16-byte chunks
//     (8 bf16), lane l taking chunks l, l + 32, ...: every load is a fully used 512-byte warp transaction per row,
//     and several chunks per row are loaded before the first is used (U below);
//   - the M rows of inp are read beside W (the same 16-byte chunk of each row; they stay in L1/L2, M * K * 2 bytes);
//   - fp32 partial sums per (W row, inp row) in registers, one warp_sum each at the end, then bias / accumulate
//     and the store by one lane per output.
// Blocks are independent (no shared memory, no __syncthreads), so a warp whose rows are past N just returns.
// Requirements (else gemv_linear_forward returns false and the caller runs the GEMM): K, the row strides of inp and
// W multiples of 8 elements and both base pointers 16-byte aligned (the vector loads), 1 <= M <= kGemvMaxRows.
// gemv_swiglu: the decode MLP's gate and up Linears plus SwiGLU in one launch (gemv_swiglu_kernel below).
// Forward only: training's GEMMs have hundreds of rows.
#include <cstdint>

#include "cuda/kernels/common.cuh"
#include "cuda/kernels/gemm.h"
#include "cuda/kernels/mma.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kGemvWarps = 4, kGemvThreads = kGemvWarps * 32;
constexpr int kGemvRowsPerWarp = 2;  // two independent W streams per warp: more loads in flight per lane

// The 8 bf16 of a 16-byte chunk as floats (bf16 -> fp32 is the 16 high bits).
__device__ __forceinline__ void unpack8(const uint4& v, float* f) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
  VR_UNROLL for (int j = 0; j < 4; j++) {
    f[2 * j] = mma::f32_from_bits(w[j] << 16);
    f[2 * j + 1] = mma::f32_from_bits(w[j] & 0xffff0000u);
  }
}

// This lane's partial dot products of R rows of W with the M rows of inp: sum[r][m] over the lane's 16-byte chunks
// (lane l takes chunks l, l + 32, ...). w[r] is row r's first element, or nullptr past the end of W (it reads as
// zeros). Every row's sum is the same sequence of fp32 operations whatever the other rows are, so a row gives the
// same bits in gemv_kernel and in the fused SwiGLU pass.
template <int M, int R>
__device__ __forceinline__ void lane_dots(float (&sum)[R][M], const __nv_bfloat16* const (&w)[R],
                                          const __nv_bfloat16* A, int64_t lda, int64_t K, int lane) {
  VR_UNROLL for (int r = 0; r < R; r++) VR_UNROLL for (int m = 0; m < M; m++) sum[r][m] = 0.f;
  const int64_t chunks = K / 8;
  // U chunks of each W row are loaded before any is used: R * U 16-byte loads in flight per lane. A 7B decode
  // Linear has only ~14 warps per SM (N / 8 rows per block), so without this the SMs could not keep enough bytes
  // in flight to cover HBM latency. U shrinks with M, whose inp chunks cost registers too.
  constexpr int U = M <= 2 ? 4 : (M <= 4 ? 2 : 1);
  for (int64_t c0 = lane; c0 < chunks; c0 += 32 * U) {
    uint4 wv[R][U];
    VR_UNROLL for (int r = 0; r < R; r++) VR_UNROLL for (int u = 0; u < U; u++) {
      const int64_t c = c0 + 32 * u;
      wv[r][u] = w[r] && c < chunks ? mma::load16(w[r] + c * 8) : make_uint4(0, 0, 0, 0);
    }
    VR_UNROLL for (int u = 0; u < U; u++) {
      const int64_t c = c0 + 32 * u;
      if (c >= chunks) break;
      float a[M][8];
      VR_UNROLL for (int m = 0; m < M; m++) unpack8(mma::load16(A + m * lda + c * 8), a[m]);
      VR_UNROLL for (int r = 0; r < R; r++) {
        float wf[8];
        unpack8(wv[r][u], wf);  // zeros past the last row: adds nothing
        VR_UNROLL for (int m = 0; m < M; m++) VR_UNROLL for (int j = 0; j < 8; j++) sum[r][m] += wf[j] * a[m][j];
      }
    }
  }
}

template <int M, class TC>
__global__ void gemv_kernel(TC* C, const __nv_bfloat16* A, const __nv_bfloat16* W, const float* bias, int64_t N,
                            int64_t K, int64_t lda, int64_t ldw, int64_t ldc, bool accumulate) {
  using namespace dev;
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const int64_t n0 = (int64_t(blockIdx.x) * kGemvWarps + warp) * kGemvRowsPerWarp;
  if (n0 >= N) return;
  const int rows = N - n0 < kGemvRowsPerWarp ? int(N - n0) : kGemvRowsPerWarp;
  const __nv_bfloat16* w[kGemvRowsPerWarp];
  VR_UNROLL for (int r = 0; r < kGemvRowsPerWarp; r++) w[r] = r < rows ? W + (n0 + r) * ldw : nullptr;
  float sum[kGemvRowsPerWarp][M];
  lane_dots<M, kGemvRowsPerWarp>(sum, w, A, lda, K, lane);
  VR_UNROLL for (int r = 0; r < kGemvRowsPerWarp; r++) VR_UNROLL for (int m = 0; m < M; m++) {
    const float s = warp_sum(sum[r][m]);  // every lane joins the shuffles, also for r >= rows (then s = 0, unused)
    if (lane == r * M + m && r < rows) {  // one writer per output (2 * M <= 16 <= 32 lanes)
      const int64_t n = n0 + r;
      TC* dst = C + m * ldc + n;
      float v = s + (bias ? bias[n] : 0.f);
      if (accumulate) v += to_f32(*dst);
      *dst = from_f32<TC>(v);
    }
  }
}

// The decode MLP's gate / up half in one pass: a warp streams row n of W_gate and row n of W_up (the two W streams
// gemv_kernel's warp has), then out[m, n] = silu(g) * u with g and u rounded to bf16 first - exactly what
// gemv_kernel into bf16 twice and swiglu_forward give (the "+ 0.f" is gemv_kernel's absent bias), in one launch
// instead of three and without the [M, F] round trip of g and u.
template <int M>
__global__ void gemv_swiglu_kernel(__nv_bfloat16* out, const __nv_bfloat16* A, const __nv_bfloat16* Wg,
                                   const __nv_bfloat16* Wu, int64_t F, int64_t K, int64_t lda, int64_t ldw,
                                   int64_t ldo) {
  using namespace dev;
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const int64_t n = int64_t(blockIdx.x) * kGemvWarps + warp;
  if (n >= F) return;
  const __nv_bfloat16* w[2] = {Wg + n * ldw, Wu + n * ldw};
  float sum[2][M];
  lane_dots<M, 2>(sum, w, A, lda, K, lane);
  VR_UNROLL for (int m = 0; m < M; m++) {
    const float g = warp_sum(sum[0][m]), u = warp_sum(sum[1][m]);
    if (lane == m) {
      const float g16 = to_f32(from_f32<__nv_bfloat16>(g + 0.f)), u16 = to_f32(from_f32<__nv_bfloat16>(u + 0.f));
      out[m * ldo + n] = from_f32<__nv_bfloat16>(swiglu_value(g16, u16));
    }
  }
}

template <int M, class TD>
cudaError_t launch_rows(TD* C, const __nv_bfloat16* A, const __nv_bfloat16* W, const GemmArgs& p, Stream s) {
  const int64_t per_block = int64_t(kGemvWarps) * kGemvRowsPerWarp;
  const int64_t blocks = (p.n + per_block - 1) / per_block;
  return cuda_launch(gemv_kernel<M, TD>, dim3(unsigned(blocks)), dim3(kGemvThreads), 0, s, C, A, W, p.bias, p.n, p.k,
                     p.lda, p.ldb, p.ldc, p.accumulate);
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

template <class TC>
bool run(TC* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s) {
  if (g.trans_a || !g.trans_b || g.m < 1 || g.m > kGemvMaxRows || g.k <= 0 || g.n <= 0) return false;
  const GemmArgs p = checked_gemm_args(g);
  if (p.k % 8 || p.lda % 8 || p.ldb % 8 || !aligned16(A) || !aligned16(B)) return false;
  VR_CHECK(C && A && B, "gemv: null matrix pointer");
  VR_CHECK((p.n + kGemvWarps * kGemvRowsPerWarp - 1) / (kGemvWarps * kGemvRowsPerWarp) <= 0x7fffffff,
           "gemv: n=", p.n, " is too large for one launch");
  auto* c = dptr(C);
  auto* a = dptr(A);
  auto* b = dptr(B);
  cudaError_t e = cudaSuccess;
  switch (p.m) {  // M is a template parameter: the partial sums stay in registers
    case 1: e = launch_rows<1>(c, a, b, p, s); break;
    case 2: e = launch_rows<2>(c, a, b, p, s); break;
    case 3: e = launch_rows<3>(c, a, b, p, s); break;
    case 4: e = launch_rows<4>(c, a, b, p, s); break;
    case 5: e = launch_rows<5>(c, a, b, p, s); break;
    case 6: e = launch_rows<6>(c, a, b, p, s); break;
    case 7: e = launch_rows<7>(c, a, b, p, s); break;
    default: e = launch_rows<8>(c, a, b, p, s); break;
  }
  check_launch(e, "gemv");
  return true;
}

template <int M>
cudaError_t launch_swiglu(__nv_bfloat16* out, const __nv_bfloat16* A, const __nv_bfloat16* Wg,
                          const __nv_bfloat16* Wu, int64_t F, int64_t K, Stream s) {
  const int64_t blocks = (F + kGemvWarps - 1) / kGemvWarps;
  return cuda_launch(gemv_swiglu_kernel<M>, dim3(unsigned(blocks)), dim3(kGemvThreads), 0, s, out, A, Wg, Wu, F, K, K,
                     K, F);
}

}  // namespace

bool gemv_linear(float* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s) { return run(C, A, B, g, s); }
bool gemv_linear(bf16* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s) { return run(C, A, B, g, s); }

bool gemv_swiglu(bf16* out, const bf16* A, const bf16* Wg, const bf16* Wu, int64_t M, int64_t F, int64_t K,
                 Stream s) {
  if (M < 1 || M > kGemvMaxRows || F <= 0 || K <= 0 || K % 8 || !aligned16(A) || !aligned16(Wg) || !aligned16(Wu))
    return false;
  VR_CHECK(out && A && Wg && Wu, "gemv_swiglu: null matrix pointer");
  VR_CHECK((F + kGemvWarps - 1) / kGemvWarps <= 0x7fffffff, "gemv_swiglu: F=", F, " is too large for one launch");
  auto* o = dptr(out);
  auto* a = dptr(A);
  auto* g = dptr(Wg);
  auto* u = dptr(Wu);
  cudaError_t e = cudaSuccess;
  switch (M) {
    case 1: e = launch_swiglu<1>(o, a, g, u, F, K, s); break;
    case 2: e = launch_swiglu<2>(o, a, g, u, F, K, s); break;
    case 3: e = launch_swiglu<3>(o, a, g, u, F, K, s); break;
    case 4: e = launch_swiglu<4>(o, a, g, u, F, K, s); break;
    case 5: e = launch_swiglu<5>(o, a, g, u, F, K, s); break;
    case 6: e = launch_swiglu<6>(o, a, g, u, F, K, s); break;
    case 7: e = launch_swiglu<7>(o, a, g, u, F, K, s); break;
    default: e = launch_swiglu<8>(o, a, g, u, F, K, s); break;
  }
  check_launch(e, "gemv_swiglu");
  return true;
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
