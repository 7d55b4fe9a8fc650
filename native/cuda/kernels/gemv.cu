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

template <int M, class TC>
__global__ void gemv_kernel(TC* C, const __nv_bfloat16* A, const __nv_bfloat16* W, const float* bias, int64_t N,
                            int64_t K, int64_t lda, int64_t ldw, int64_t ldc, bool accumulate) {
  using namespace dev;
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const int64_t n0 = (int64_t(blockIdx.x) * kGemvWarps + warp) * kGemvRowsPerWarp;
  if (n0 >= N) return;
  const int rows = N - n0 < kGemvRowsPerWarp ? int(N - n0) : kGemvRowsPerWarp;
  float sum[kGemvRowsPerWarp][M];
  VR_UNROLL for (int r = 0; r < kGemvRowsPerWarp; r++) VR_UNROLL for (int m = 0; m < M; m++) sum[r][m] = 0.f;
  const int64_t chunks = K / 8;
  // U chunks of each W row are loaded before any is used: 2 * U 16-byte loads in flight per lane. A 7B decode
  // Linear has only ~14 warps per SM (N / 8 rows per block), so without this the SMs could not keep enough bytes
  // in flight to cover HBM latency. U shrinks with M, whose inp chunks cost registers too.
  constexpr int U = M <= 2 ? 4 : (M <= 4 ? 2 : 1);
  for (int64_t c0 = lane; c0 < chunks; c0 += 32 * U) {
    uint4 wv[kGemvRowsPerWarp][U];
    VR_UNROLL for (int r = 0; r < kGemvRowsPerWarp; r++) VR_UNROLL for (int u = 0; u < U; u++) {
      const int64_t c = c0 + 32 * u;
      wv[r][u] = r < rows && c < chunks ? mma::load16(W + (n0 + r) * ldw + c * 8) : make_uint4(0, 0, 0, 0);
    }
    VR_UNROLL for (int u = 0; u < U; u++) {
      const int64_t c = c0 + 32 * u;
      if (c >= chunks) break;
      float a[M][8];
      VR_UNROLL for (int m = 0; m < M; m++) unpack8(mma::load16(A + m * lda + c * 8), a[m]);
      VR_UNROLL for (int r = 0; r < kGemvRowsPerWarp; r++) {
        float w[8];
        unpack8(wv[r][u], w);  // zeros past the last row: adds nothing
        VR_UNROLL for (int m = 0; m < M; m++) VR_UNROLL for (int j = 0; j < 8; j++) sum[r][m] += w[j] * a[m][j];
      }
    }
  }
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

}  // namespace

bool gemv_linear(float* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s) { return run(C, A, B, g, s); }
bool gemv_linear(bf16* C, const bf16* A, const bf16* B, const GemmArgs& g, Stream s) { return run(C, A, B, g, s); }

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
