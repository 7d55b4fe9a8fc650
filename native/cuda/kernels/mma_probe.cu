// A one-warp probe of the fragment loads in mma.cuh, for the tests (test_attention_tc.cc) on the emulator and on a
// GPU: ldmatrix (plain and .trans) against the 4-byte fragment loads, on a 16 x 16 bf16 tile whose element [r][c]
// is the bf16 value r * 16 + c (exact: at most 255). On a GPU it checks the emulator's ldmatrix model against the
// hardware; on the emulator it checks the model against the documented fragment layout.
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

}  // namespace

void mma_fragment_probe(uint32_t* out, Stream s) {
  VR_CHECK(out, "mma_fragment_probe: null output");
  check_launch(cuda_launch(mma_fragment_probe_kernel, dim3(1), dim3(32), 0, s, out), "mma_fragment_probe");
}

}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda
