// A one-warp probe of the fragment loads in mma.cuh, for the tests (test_attention_tc.cc) on the emulator and on a
// GPU: ldmatrix (plain and .trans) against the 4-byte fragment loads, on a 16 x 16 bf16 tile whose element [r][c]
// is the bf16 value r * 16 + c (exact: at most 255). On a GPU it checks the emulator's ldmatrix model against the
// hardware; on the emulator it checks the model against the documented fragment layout. Also a cp.async probe.
#include "cuda/kernels/mma.cuh"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {

namespace {

constexpr int kProbeLd = 24;  // bf16 per row: 48 bytes, ldmatrix rows stay 16-byte aligned

__global__ void mma_fragment_probe_kernel(uint32_t* out) {
#if defined(VR_MMA_AVAILABLE)
  using namespace mma;
  __shared__ __align__(16) __nv_bfloat16 S[16][kProbeLd], St[16][kProbeLd];  // the tile and its transpose
  const int lane = threadIdx.x;
  for (int i = lane; i < 256; i += 32) {
    S[i / 16][i % 16] = __float2bfloat16(float(i));
    St[i % 16][i / 16] = __float2bfloat16(float(i));
  }
  __syncwarp();
  uint32_t* o = out + lane * 24;
  uint32_t a[4], b0[2], b1[2];
  ldm_a(a, &S[0][0], kProbeLd, 0, 0);
  for (int i = 0; i < 4; i++) o[i] = a[i];
  load_a_frag(a, &S[0][0], kProbeLd, 0, 0);
  for (int i = 0; i < 4; i++) o[4 + i] = a[i];
  ldm_b_nk(b0, b1, &S[0][0], kProbeLd, 0, 0);  // B[kk][n] = S[n][kk], n-tiles 0 and 8
  o[8] = b0[0], o[9] = b0[1], o[10] = b1[0], o[11] = b1[1];
  load_b_frag(b0, &S[0][0], kProbeLd, 0, 0);
  load_b_frag(b1, &S[0][0], kProbeLd, 8, 0);
  o[12] = b0[0], o[13] = b0[1], o[14] = b1[0], o[15] = b1[1];
  ldm_b_kn(b0, b1, &St[0][0], kProbeLd, 0, 0);  // the same B from the transposed storage: St[kk][n] = S[n][kk]
  o[16] = b0[0], o[17] = b0[1], o[18] = b1[0], o[19] = b1[1];
  load_b_frag(b0, &S[0][0], kProbeLd, 0, 0);
  load_b_frag(b1, &S[0][0], kProbeLd, 8, 0);
  o[20] = b0[0], o[21] = b0[1], o[22] = b1[0], o[23] = b1[1];
#else
  (void)out;
#endif
}

// Lane L copies src[8 L .. 8 L + 8) (16 bytes) into three shared rows: B in group 1, C in group 2, and a zero fill
// into Z (pre-filled with junk) in group 2; out[L * 5 + i]: 0 B's first element before any wait, 1 C's after
// wait_group 1, 2 B's after wait_group 1, 3 C's after wait_group 0, 4 Z's (as bf16 bits). out[160] = 1 on the
// emulator (whose late-landing model makes 0 and 1 predictable: still the initial 0), 0 on a GPU.
__global__ void cp_async_probe_kernel(uint32_t* out, const __nv_bfloat16* src) {
#if defined(VR_MMA_AVAILABLE)
  using namespace mma;
  __shared__ __align__(16) __nv_bfloat16 B[32][8], C[32][8], Z[32][8];
  const int lane = threadIdx.x;
  for (int j = 0; j < 8; j++) {
    B[lane][j] = C[lane][j] = __float2bfloat16(0.f);
    Z[lane][j] = __float2bfloat16(3.f);
  }
  __syncwarp();
  cp_async16(&B[lane][0], src + 8 * lane, true);
  cp_async_commit();
  cp_async16(&C[lane][0], src + 8 * lane, true);
  cp_async16(&Z[lane][0], src, false);
  cp_async_commit();
  uint32_t* o = out + lane * 5;
  o[0] = bf16_bits(B[lane][0]);
  cp_async_wait<1>();
  o[1] = bf16_bits(C[lane][0]);
  o[2] = bf16_bits(B[lane][0]);
  cp_async_wait<0>();
  o[3] = bf16_bits(C[lane][0]);
  o[4] = bf16_bits(Z[lane][3]);
#if defined(VR_CUDA_EMULATED)
  if (lane == 0) out[160] = 1;
#else
  if (lane == 0) out[160] = 0;
#endif
#else
  (void)out, (void)src;
#endif
}

}  // namespace

void cp_async_probe(uint32_t* out, const bf16* src, Stream s) {
  VR_CHECK(out && src, "cp_async_probe: null buffer");
  check_launch(cuda_launch(cp_async_probe_kernel, dim3(1), dim3(32), 0, s, out, dptr(src)), "cp_async_probe");
}

void mma_fragment_probe(uint32_t* out, Stream s) {
  VR_CHECK(out, "mma_fragment_probe: null output");
  check_launch(cuda_launch(mma_fragment_probe_kernel, dim3(1), dim3(32), 0, s, out), "mma_fragment_probe");
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
