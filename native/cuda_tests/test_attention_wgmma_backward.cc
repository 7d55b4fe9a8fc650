// The Hopper wgmma flash-attention backward (cuda/kernels/attention_wgmma_backward.cu), through attention_backward's
// dispatch on the Wgmma path (VREFLECT_ATTENTION_TILE_WGMMA_BWD picks the block shape), by the
// flash-attention rule against the fp64 dense backward (native/tests/reference.h), the CPU backend in fp32 on the
// same bf16 inputs, rounded to bf16, being the same-precision baseline:
//   max|wgmma - fp64| <= 2 * max|cpu - fp64| + floor   for dq, dk, dv (accumulated into nonzero buffers).
// lse and out come from the tensor-core forward, Delta = rowsum(dO * O) from the dispatch's delta kernel
// (attention_case.h).
// Cases: varlen segments of odd lengths crossing the 64-row / 64-key tiles, GQA 7:1 and 4:1, causal bottom-right
// (prefill, decode Tq = 1 after a cache, a diagonal one key past the tile edges), rows that see no key, D = 128 and
// the padded D = 80 with a strided q / dq (fused qkv row), cross lengths without causality. On the emulator the wgmma
// model also checks the kernel's ordering (in-flight registers / shared memory, unfenced cp.async); in the GPU test
// binary the cases run on an H100 with an sm_90a image and are skipped elsewhere.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuda_tests/attention_case.h"
#include "cuda_tests/device_buffer.h"
#include "cuda_tests/scoped_env.h"
#include "tests/harness.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {
// Declared in cuda/kernels/attention_common.cuh (a device-code header); repeated here for the host-only test.
void attention_backward_wgmma(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const float* lse, const float* delta,
                              const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a, Stream s);
bool attention_wgmma_backward_takes(const AttnArgs& a, const bf16* q, const bf16* k, const bf16* v, const bf16* dout);
}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda

namespace vr::test {
namespace {

const AttnCase kWgCases[] = {
    {"D=128 GQA 7:1 causal prefill, segments 70,129,5", 7, 1, 128, true, {70, 129, 5}, {70, 129, 5}, 0},
    {"D=128 GQA 4:1 causal decode Tq=1 after caches of 150, 41 keys", 4, 1, 128, true, {1, 1}, {150, 41}, 0},
    {"D=128 1:1 non-causal cross lengths q 33,90 k 100,17", 2, 2, 128, false, {33, 90}, {100, 17}, 0},
    {"D=128 causal, q 10 k 4 (6 rows see no key) + q 3 k 67", 2, 2, 128, true, {10, 3}, {4, 67}, 0},
    // shift 1: rows 63, 127 see exactly the first key of the next 64-key tile
    {"D=128 causal chunk after a 1-key cache, q 140 k 141", 1, 1, 128, true, {140}, {141}, 0},
    {"D=80 (padded to 128) GQA 2:1 causal, strided q / dq (fused qkv row), q 77 k 77", 2, 1, 80, true, {77}, {77},
     2 * 80},
};

bool wgmma_here() {  // the emulator: always; a GPU: an sm_90a image whose self-check passed
  if (cuda::attention_wgmma_state() == cuda::WgmmaState::Ready) return true;
  std::printf("  (skipped: no wgmma path on this device: not sm_90, no sm_90a code, or its self-check failed)\n");
  return false;
}

// lse from the tensor-core forward, the backward through attention_backward's dispatch on the Wgmma path.
void wgmma_bwd_case(const AttnCase& c, uint64_t seed, const std::string& tile, Grads grads = Grads::All) {
  tc_case(c, seed, tile + ": ", cuda::AttnKernelPath::TensorCore, cuda::AttnKernelPath::Wgmma, grads);
}

}  // namespace

// Both block shapes (VREFLECT_ATTENTION_TILE_WGMMA_BWD): one warpgroup x 64 rows, two x 64 (where the second
// warpgroup's rows may be past the segment or skip causal tiles its first does not).
VR_TEST(cuda_attention_wgmma_backward) {
  if (!wgmma_here()) return;
  for (const char* tile : {"64x64wg1", "128x64wg2"}) {
    ScopedEnv env("VREFLECT_ATTENTION_TILE_WGMMA_BWD", tile, cuda::env_switches_changed);
    check_true(std::string("wgmma backward tile ") + tile + " is the one selected",
               cuda::attention_wgmma_backward_tile() == tile);
    uint64_t seed = 161;
    for (const AttnCase& c : kWgCases) wgmma_bwd_case(c, seed++, tile);
  }
}

// dq alone and dk / dv alone (the other pointers null), on a small causal GQA case.
VR_TEST(cuda_attention_wgmma_backward_partial_grads) {
  if (!wgmma_here()) return;
  const AttnCase c{"D=128 GQA 2:1 causal, q 70 k 75", 2, 1, 128, true, {70}, {75}, 0};
  wgmma_bwd_case(c, 171, "128x64wg2 dq only", Grads::DqOnly);
  wgmma_bwd_case(c, 172, "128x64wg2 dk/dv only", Grads::DkDvOnly);
}

VR_TEST(cuda_attention_wgmma_backward_refuses_bad_shapes) {
  {
    ScopedEnv env("VREFLECT_ATTENTION_TILE_WGMMA_BWD", nullptr, cuda::env_switches_changed);
    check_true("wgmma backward tile: unset runs the default 128x64wg2", cuda::attention_wgmma_backward_tile() == "128x64wg2");
  }
  {
    ScopedEnv env("VREFLECT_ATTENTION_TILE_WGMMA_BWD", "256x64", cuda::env_switches_changed);
    expect_throw("VREFLECT_ATTENTION_TILE_WGMMA_BWD=256x64", [] { cuda::attention_wgmma_backward_tile(); });
    expect_throw("VREFLECT_ATTENTION_TILE_WGMMA_BWD=256x64 (refused on any path)",
                 [] { cuda::attention_kernel_resolve(cuda::AttnKernelPath::Scalar, 64, true); });
  }
  {
    ScopedEnv env("VREFLECT_ATTENTION_TILE_WGMMA_BWD", "tc", cuda::env_switches_changed);
    check_true("wgmma backward tile tc names the mma.sync backward", cuda::attention_wgmma_backward_tile() == "tc");
  }
  DeviceBuffer<int32_t> cu(std::vector<int32_t>{0, 8});
  DeviceBuffer<bf16> buf(size_t(8 * 2 * 136 + 8));
  DeviceBuffer<float> stats(size_t(2 * 8));
  auto args = [&](int D, int64_t q_stride) {
    cuda::AttnArgs a;
    a.Hq = a.Hkv = 1, a.D = D, a.scale = 0.1f, a.nseq = 1, a.cu_q = a.cu_k = cu.get();
    a.max_seqlen_q = a.max_seqlen_k = 8, a.total_q = 8;
    a.q_stride = q_stride, a.k_stride = a.v_stride = a.o_stride = D;
    return a;
  };
  bf16* b = buf.get();
  check_true("attention_wgmma_backward_takes: D 128 aligned yes, D 100 / D 136 / q stride 132 / misaligned k no",
             cuda::attention_wgmma_backward_takes(args(128, 128), b, b, b, b) &&
                 cuda::attention_wgmma_backward_takes(args(80, 80), b, b, b, b) &&
                 !cuda::attention_wgmma_backward_takes(args(100, 100), b, b, b, b) &&
                 !cuda::attention_wgmma_backward_takes(args(136, 136), b, b, b, b) &&
                 !cuda::attention_wgmma_backward_takes(args(128, 132), b, b, b, b) &&
                 !cuda::attention_wgmma_backward_takes(args(128, 128), b, b + 1, b, b));
  expect_throw("attention_backward_wgmma with D=100 (not a multiple of 8)", [&] {
    cuda::attention_backward_wgmma(b, b, b, b, stats.get(), stats.get(), b, b, b, args(100, 100), nullptr);
  });
  expect_throw("attention_backward_wgmma with D=136 (> 128)", [&] {
    cuda::attention_backward_wgmma(b, b, b, b, stats.get(), stats.get(), b, b, b, args(136, 136), nullptr);
  });
  expect_throw("attention_backward_wgmma with a q row stride of 132 (not a multiple of 8)", [&] {
    cuda::attention_backward_wgmma(b, b, b, b, stats.get(), stats.get(), b, b, b, args(128, 132), nullptr);
  });
  expect_throw("attention_backward_wgmma with a k base 2 bytes off 16-byte alignment", [&] {
    cuda::attention_backward_wgmma(b, b, b, b, stats.get(), stats.get(), b, b + 1, b, args(128, 128), nullptr);
  });
}

}  // namespace vr::test
