// A one-warpgroup GEMM through the wgmma building blocks (wgmma.cuh), for the tests (test_wgmma.cc, on the
// emulator and on a GPU) and the run-time self-check of the Hopper attention path (attention_wgmma.cu):
//   D[64][N] = (accumulate_c ? C : 0) + A[64][K] B[K][N],  K = 16 ksteps, bf16 inputs, fp32 C / D (row-major).
// A sits in shared memory as a K-major core-matrix tile (SS) or is loaded into the A-fragment registers (RS); B sits
// in shared memory K-major (stored [n][k], element stores: a 16-byte chunk of B^T is not contiguous in global
// memory) or MN-major (stored [k][n], filled by cp.async: the transpose bit). Every k-step is one op, all in one
// commit group; with accumulate_c = false the first op runs with scale-d = 0 over junk accumulators.
// On a GPU this checks our reading of the fragment and descriptor layouts against the hardware; on the emulator it
// checks the model against the same naive product.
#include "cuda/kernels/wgmma.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kProbeMaxK = 64;

template <int N, bool RS, bool MN>
__global__ void __launch_bounds__(128) wgmma_probe_kernel(float* d_out, const __nv_bfloat16* a,
                                                           const __nv_bfloat16* b, const float* c, int ksteps,
                                                           bool accumulate_c) {
#if defined(VR_WGMMA_AVAILABLE)
  using namespace wgmma;
  const int K = 16 * ksteps, tid = threadIdx.x;
  CUDA_DYNAMIC_SHARED(__nv_bfloat16, smem);
  // A: rows m, cols k (K-major). B: K-major rows n, cols k; MN-major rows k, cols n.
  const uint32_t a_group = uint32_t(K / 8) * 128u, b_group = uint32_t((MN ? N : K) / 8) * 128u;
  __nv_bfloat16* As = smem;
  __nv_bfloat16* Bs = smem + 64 * K;
  auto at = [](__nv_bfloat16* tile, int row, int col, uint32_t group) {
    return tile + core_offset(row, col, group) / 2;
  };
  for (int i = tid; i < 64 * K; i += 128) *at(As, i / K, i % K, a_group) = a[i];
  if (MN) {
    for (int ch = tid; ch < K * N / 8; ch += 128) {  // 16-byte chunks of B's rows [k][n .. n + 8), shared offset 16 ch
      const TileChunk x = tile_chunk(ch, N);
      mma::cp_async16(at(Bs, x.row, x.col, b_group), b + x.row * N + x.col, true);
    }
    mma::cp_async_commit();
    mma::cp_async_wait<0>();
  } else {
    for (int i = tid; i < K * N; i += 128) *at(Bs, i % N, i / N, b_group) = b[i];  // B[k][n] -> row n, col k
  }
  fence_proxy_async();  // the generic-proxy writes above, before the async-proxy reads of the ops
  __syncthreads();

  const int w = tid / 32, g = (tid % 32) / 4, t = tid % 4;
  float d[N / 2];
  for (int r = 0; r < N / 2; r++) {
    const int row = 16 * w + g + 8 * ((r % 4) >> 1), col = 8 * (r / 4) + 2 * t + (r & 1);
    d[r] = accumulate_c ? c[row * N + col] : 12345.f;  // junk that scale-d = 0 must ignore
  }
  uint32_t af[kProbeMaxK / 16][4];
  if (RS) {
    for (int ks = 0; ks < ksteps; ks++)
      for (int reg = 0; reg < 4; reg++) {
        const int row = 16 * w + g + 8 * (reg & 1), col = 16 * ks + 2 * t + 8 * (reg >> 1);
        af[ks][reg] = uint32_t(mma::bf16_bits(a[row * K + col])) | (uint32_t(mma::bf16_bits(a[row * K + col + 1])) << 16);
      }
  }
  fence_operands(d);
  fence();
  for (int ks = 0; ks < ksteps; ks++) {
    // K-major A / B: the k-step's two core columns start 2 cores (256 bytes) further; MN-major B: two core rows.
    const uint64_t db = MN ? desc_mn_major(Bs + 16 * ks * N, b_group) : desc_k_major(Bs + 16 * ks * 8, b_group);
    const bool acc = accumulate_c || ks > 0;
    if (RS) mma_rs<N, MN>(d, af[ks], db, acc);
    else mma_ss<N, MN>(d, desc_k_major(As + 16 * ks * 8, a_group), db, acc);
  }
  commit_group();
  wait_group<0>();
  fence_operands(d);
  for (int r = 0; r < N / 2; r++) {
    const int row = 16 * w + g + 8 * ((r % 4) >> 1), col = 8 * (r / 4) + 2 * t + (r & 1);
    d_out[row * N + col] = d[r];
  }
#else
  (void)d_out, (void)a, (void)b, (void)c, (void)ksteps, (void)accumulate_c;
#endif
}

// Writes 1 where this image has the wgmma path (sm_90a code or the emulator), 0 in a stub (sm_80, plain sm_90).
__global__ void wgmma_image_kernel(int* out) {
#if defined(VR_WGMMA_AVAILABLE)
  *out = 1;
#else
  *out = 0;
#endif
}

template <int N, bool RS, bool MN>
void launch_probe(float* d, const bf16* a, const bf16* b, const float* c, int ksteps, bool accumulate_c, Stream s) {
  const size_t smem = sizeof(__nv_bfloat16) * size_t(16 * ksteps) * size_t(64 + N);
  auto* kernel = wgmma_probe_kernel<N, RS, MN>;
  if (smem > 48 * 1024)
    check_launch(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)), "wgmma_probe");
  check_launch(cuda_launch(kernel, dim3(1), dim3(128), smem, s, d, dptr(a), dptr(b), c, ksteps, accumulate_c),
               "wgmma_probe");
}

template <int N>
void launch_probe_n(float* d, const bf16* a, const bf16* b, const float* c, int ksteps, bool accumulate_c, bool rs,
                    bool mn, Stream s) {
  if (rs) return mn ? launch_probe<N, true, true>(d, a, b, c, ksteps, accumulate_c, s)
                    : launch_probe<N, true, false>(d, a, b, c, ksteps, accumulate_c, s);
  return mn ? launch_probe<N, false, true>(d, a, b, c, ksteps, accumulate_c, s)
            : launch_probe<N, false, false>(d, a, b, c, ksteps, accumulate_c, s);
}

}  // namespace

bool wgmma_image_available() {
#if defined(VR_CUDA_EMULATED)
  return true;  // the model (and only runtime calls the emulator defines may appear in its build)
#else
  int* d = nullptr;
  if (cudaMalloc(reinterpret_cast<void**>(&d), sizeof(int)) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  int flag = 0;
  const bool ran = cuda_launch(wgmma_image_kernel, dim3(1), dim3(1), 0, nullptr, d) == cudaSuccess &&
                   cudaMemcpy(&flag, d, sizeof flag, cudaMemcpyDeviceToHost) == cudaSuccess;
  if (!ran) (void)cudaGetLastError();  // no image for this device at all: not available
  cudaFree(d);
  return ran && flag == 1;
#endif
}

void wgmma_probe_gemm(float* d, const bf16* a, const bf16* b, const float* c, int n, int k, bool a_in_registers,
                      bool b_mn_major, bool accumulate_c, Stream s) {
  VR_CHECK(d && a && b && (c || !accumulate_c), "wgmma_probe_gemm: null buffer");
  VR_CHECK(k > 0 && k % 16 == 0 && k <= kProbeMaxK, "wgmma_probe_gemm: K=", k, " is not a multiple of 16 in [16, ",
           kProbeMaxK, "]");
  switch (n) {
    case 32: return launch_probe_n<32>(d, a, b, c, k / 16, accumulate_c, a_in_registers, b_mn_major, s);
    case 64: return launch_probe_n<64>(d, a, b, c, k / 16, accumulate_c, a_in_registers, b_mn_major, s);
    case 128: return launch_probe_n<128>(d, a, b, c, k / 16, accumulate_c, a_in_registers, b_mn_major, s);
    default: fail("wgmma_probe_gemm: N=", n, " is not one of 32, 64, 128");
  }
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
