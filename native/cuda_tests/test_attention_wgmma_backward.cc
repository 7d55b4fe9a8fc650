// The Hopper wgmma flash-attention backward (cuda/kernels/attention_wgmma_backward.cu), called directly, by the
// flash-attention rule against the fp64 dense backward (native/tests/reference.h), the CPU backend in fp32 on the
// same bf16 inputs, rounded to bf16, being the same-precision baseline:
//   max|wgmma - fp64| <= 2 * max|cpu - fp64| + floor   for dq, dk, dv (accumulated into nonzero buffers).
// lse comes from the tensor-core forward (as training runs it), Delta = rowsum(dO * O) from its bf16 out on the host.
// Cases: varlen segments of odd lengths crossing the 64-row / 64-key tiles, GQA 7:1 and 4:1, causal bottom-right
// (prefill, decode Tq = 1 after a cache, a diagonal one key past the tile edges), rows that see no key, D = 128 and
// the padded D = 80 with a strided q / dq (fused qkv row), cross lengths without causality. On the emulator the wgmma
// model also checks the kernel's ordering (in-flight registers / shared memory, unfenced cp.async); in the GPU test
// binary the cases run on an H100 with an sm_90a image and are skipped elsewhere.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuda_tests/device_buffer.h"
#include "cuda_tests/scoped_env.h"
#include "ops/attention.h"
#include "tests/harness.h"
#include "tests/reference.h"

namespace vr::cuda {
inline namespace VR_CUDA_ABI {
// Declared in cuda/kernels/attention_common.cuh (a device-code header); repeated here for the host-only test.
void attention_backward_wgmma(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const float* lse, const float* delta,
                              const bf16* q, const bf16* k, const bf16* v, const AttnArgs& a, Stream s);
bool attention_wgmma_backward_takes(const AttnArgs& a, const bf16* q, const bf16* k, const bf16* v, const bf16* dout);
// The block shape VREFLECT_ATTENTION_TILE_WGMMA_BWD selects ("128x64wg2" or "64x64wg1"; "tc" sends the backward to the mma.sync kernels); throws on a bad value.
std::string attention_wgmma_backward_tile();
}  // namespace VR_CUDA_ABI
}  // namespace vr::cuda

namespace vr::test {
namespace {

struct WgCase {
  const char* name;
  int Hq, Hkv, D;
  bool causal;
  std::vector<int32_t> lq, lk;  // segment lengths
  int q_pad;                    // extra elements per q / dq row
};

std::vector<int32_t> seg_offsets(const std::vector<int32_t>& lens) {
  std::vector<int32_t> cu{0};
  for (int32_t l : lens) cu.push_back(cu.back() + l);
  return cu;
}

// Which gradients the call asks for (the others passed as null must stay untouched).
enum class Grads { All, DqOnly, DkDvOnly };

void wgmma_bwd_case(const WgCase& c, uint64_t seed, const std::string& tile, Grads grads = Grads::All) {
  Rng rng(seed);
  const std::vector<int32_t> cu_q = seg_offsets(c.lq), cu_k = seg_offsets(c.lk);
  const int64_t Tq = cu_q.back(), Tk = cu_k.back();
  const int64_t WQ = int64_t(c.Hq) * c.D, WK = int64_t(c.Hkv) * c.D, QS = WQ + c.q_pad;
  const auto q_wide = stored<bf16>(rng.vec(size_t(Tq * QS), -1.5, 1.5));
  const auto k = stored<bf16>(rng.vec(size_t(Tk * WK), -1.5, 1.5)), v = stored<bf16>(rng.vec(size_t(Tk * WK)));
  std::vector<float> q(size_t(Tq * WQ));
  for (int64_t t = 0; t < Tq; t++) std::copy_n(&q_wide[size_t(t * QS)], WQ, &q[size_t(t * WQ)]);
  const auto dout = stored<bf16>(rng.vec(size_t(Tq * WQ)));
  const auto dq0 = stored<bf16>(rng.vec(size_t(Tq * WQ))), dk0 = stored<bf16>(rng.vec(size_t(Tk * WK)));
  const auto dv0 = stored<bf16>(rng.vec(size_t(Tk * WK)));
  const float scale = 1.0f / std::sqrt(float(c.D));
  const std::string tag = "cuda attention wgmma backward bf16 " + tile + ": " + c.name;

  ref::AttnShape sh{c.Hq, c.Hkv, c.D, double(scale), c.causal, cu_q, cu_k};
  std::vector<double> out64(size_t(Tq * WQ)), lse64(size_t(c.Hq * Tq));
  std::vector<double> dq64 = to_double(dq0), dk64 = to_double(dk0), dv64 = to_double(dv0);
  ref::attention<double>(out64, lse64, to_double(q), to_double(k), to_double(v), sh);
  ref::attention_backward<double>(dq64, dk64, dv64, to_double(dout), to_double(q), to_double(k), to_double(v), sh);

  AttnParams p;
  p.Hq = c.Hq, p.Hkv = c.Hkv, p.D = c.D, p.scale = scale, p.causal = c.causal, p.nseq = int(c.lq.size());
  p.cu_q = cu_q.data(), p.cu_k = cu_k.data();
  p.q_stride = WQ, p.k_stride = p.v_stride = WK, p.o_stride = WQ;
  std::vector<float> out_cpu(size_t(Tq * WQ)), lse_cpu(size_t(c.Hq * Tq));
  std::vector<float> dq_cpu = dq0, dk_cpu = dk0, dv_cpu = dv0;
  vr::attention_forward(out_cpu.data(), lse_cpu.data(), q.data(), k.data(), v.data(), p);
  vr::attention_backward(dq_cpu.data(), dk_cpu.data(), dv_cpu.data(), dout.data(), out_cpu.data(), lse_cpu.data(),
                         q.data(), k.data(), v.data(), p);
  dq_cpu = stored<bf16>(dq_cpu), dk_cpu = stored<bf16>(dk_cpu), dv_cpu = stored<bf16>(dv_cpu);

  DeviceBuffer<int32_t> d_cuq(cu_q), d_cuk(cu_k);
  DeviceBuffer<bf16> d_q(to_storage<bf16>(q_wide)), d_k(to_storage<bf16>(k)), d_v(to_storage<bf16>(v));
  DeviceBuffer<bf16> d_out(size_t(Tq * WQ));
  DeviceBuffer<float> d_lse(size_t(c.Hq * Tq));
  cuda::AttnArgs a;
  a.Hq = c.Hq, a.Hkv = c.Hkv, a.D = c.D, a.scale = scale, a.causal = c.causal, a.nseq = p.nseq;
  a.cu_q = d_cuq.get(), a.cu_k = d_cuk.get();
  a.max_seqlen_q = *std::max_element(c.lq.begin(), c.lq.end());
  a.max_seqlen_k = *std::max_element(c.lk.begin(), c.lk.end());
  a.total_q = Tq;
  a.q_stride = QS, a.k_stride = a.v_stride = WK, a.o_stride = WQ;
  cuda::attention_forward(d_out.get(), d_lse.get(), d_q.get(), d_k.get(), d_v.get(), a, nullptr,
                          cuda::AttnKernelPath::TensorCore);
  // Delta[h][t] = dO . O over the head's columns (the delta kernel's fp32 sum of the bf16 products).
  const auto out = to_float(d_out.download());
  std::vector<float> delta(size_t(c.Hq * Tq));
  for (int h = 0; h < c.Hq; h++)
    for (int64_t t = 0; t < Tq; t++) {
      double s = 0;
      for (int d = 0; d < c.D; d++) s += double(dout[size_t(t * WQ + h * c.D + d)]) * out[size_t(t * WQ + h * c.D + d)];
      delta[size_t(h * Tq + t)] = float(s);
    }
  std::vector<float> dq0_wide(size_t(Tq * QS), 7.f);
  for (int64_t t = 0; t < Tq; t++) std::copy_n(&dq0[size_t(t * WQ)], WQ, &dq0_wide[size_t(t * QS)]);
  DeviceBuffer<bf16> d_dout(to_storage<bf16>(dout)), d_dq(to_storage<bf16>(dq0_wide));
  DeviceBuffer<bf16> d_dk(to_storage<bf16>(dk0)), d_dv(to_storage<bf16>(dv0));
  DeviceBuffer<float> d_delta(delta);
  const bool want_dq = grads != Grads::DkDvOnly, want_dkdv = grads != Grads::DqOnly;
  cuda::attention_backward_wgmma(want_dq ? d_dq.get() : nullptr, want_dkdv ? d_dk.get() : nullptr,
                                 want_dkdv ? d_dv.get() : nullptr, d_dout.get(), d_lse.get(), d_delta.get(),
                                 d_q.get(), d_k.get(), d_v.get(), a, nullptr);
  const auto dq_wide = to_float(d_dq.download()), dk = to_float(d_dk.download()), dv = to_float(d_dv.download());
  std::vector<float> dq(size_t(Tq * WQ));
  bool pad_intact = true;
  for (int64_t t = 0; t < Tq; t++) {
    std::copy_n(&dq_wide[size_t(t * QS)], WQ, &dq[size_t(t * WQ)]);
    for (int64_t cc = WQ; cc < QS; cc++) pad_intact &= dq_wide[size_t(t * QS + cc)] == 7.f;
  }
  if (want_dq) check_rule(tag + " dq", dq.data(), dq_cpu.data(), dq64.data(), dq.size(), 1e-6);
  else check_true(tag + " dq (null: not asked) untouched", dq == dq0);
  if (want_dkdv) {
    check_rule(tag + " dk", dk.data(), dk_cpu.data(), dk64.data(), dk.size(), 1e-6);
    check_rule(tag + " dv", dv.data(), dv_cpu.data(), dv64.data(), dv.size(), 1e-6);
  } else {
    check_true(tag + " dk, dv (null: not asked) untouched", dk == dk0 && dv == dv0);
  }
  if (c.q_pad) check_true(tag + " dq row padding untouched", pad_intact);
}

const WgCase kWgCases[] = {
    {"D=128 GQA 7:1 causal prefill, segments 70,129,5", 7, 1, 128, true, {70, 129, 5}, {70, 129, 5}, 0},
    {"D=128 GQA 4:1 causal decode Tq=1 after caches of 150, 41 keys", 4, 1, 128, true, {1, 1}, {150, 41}, 0},
    {"D=128 1:1 non-causal cross lengths q 33,90 k 100,17", 2, 2, 128, false, {33, 90}, {100, 17}, 0},
    {"D=128 causal, q 10 k 4 (6 rows see no key) + q 3 k 67", 2, 2, 128, true, {10, 3}, {4, 67}, 0},
    // shift 1: rows 63, 127 see exactly the first key of the next 64-key tile
    {"D=128 causal chunk after a 1-key cache, q 140 k 141", 1, 1, 128, true, {140}, {141}, 0},
    {"D=80 (padded to 128) GQA 2:1 causal, strided q / dq (fused qkv row), q 77 k 77", 2, 1, 80, true, {77}, {77},
     2 * 80},
};

bool wgmma_here() {
  if (cuda::wgmma_image_available()) return true;
  std::printf("  (skipped: this device / build has no sm_90a wgmma code)\n");
  return false;
}

}  // namespace

// Both block shapes (VREFLECT_ATTENTION_TILE_WGMMA_BWD): one warpgroup x 64 rows, two x 64 (where the second
// warpgroup's rows may be past the segment or skip causal tiles its first does not).
VR_TEST(cuda_attention_wgmma_backward) {
  if (!wgmma_here()) return;
  for (const char* tile : {"64x64wg1", "128x64wg2"}) {
    ScopedEnv env("VREFLECT_ATTENTION_TILE_WGMMA_BWD", tile);
    check_true(std::string("wgmma backward tile ") + tile + " is the one selected",
               cuda::attention_wgmma_backward_tile() == tile);
    uint64_t seed = 161;
    for (const WgCase& c : kWgCases) wgmma_bwd_case(c, seed++, tile);
  }
}

// dq alone and dk / dv alone (the other pointers null), on a small causal GQA case.
VR_TEST(cuda_attention_wgmma_backward_partial_grads) {
  if (!wgmma_here()) return;
  const WgCase c{"D=128 GQA 2:1 causal, q 70 k 75", 2, 1, 128, true, {70}, {75}, 0};
  wgmma_bwd_case(c, 171, "128x64 dq only", Grads::DqOnly);
  wgmma_bwd_case(c, 172, "128x64 dk/dv only", Grads::DkDvOnly);
}

VR_TEST(cuda_attention_wgmma_backward_refuses_bad_shapes) {
  {
    ScopedEnv env("VREFLECT_ATTENTION_TILE_WGMMA_BWD", nullptr);
    check_true("wgmma backward tile: unset runs the default 128x64wg2", cuda::attention_wgmma_backward_tile() == "128x64wg2");
  }
  {
    ScopedEnv env("VREFLECT_ATTENTION_TILE_WGMMA_BWD", "256x64", cuda::attention_env_changed);
    expect_throw("VREFLECT_ATTENTION_TILE_WGMMA_BWD=256x64", [] { cuda::attention_wgmma_backward_tile(); });
    expect_throw("VREFLECT_ATTENTION_TILE_WGMMA_BWD=256x64 (refused on any path)",
                 [] { cuda::attention_kernel_resolve(cuda::AttnKernelPath::Scalar, 64, true); });
  }
  {
    ScopedEnv env("VREFLECT_ATTENTION_TILE_WGMMA_BWD", "tc");
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
