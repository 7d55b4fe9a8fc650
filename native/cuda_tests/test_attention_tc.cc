// The tensor-core flash attention forward and backward (cuda/kernels/attention_tc.cu, mma.sync modelled on the
// emulator; the backward accumulates into dq/dk/dv and runs on the kernel's own out / lse) by the
// flash-attention rule against the fp64 dense reference (native/tests/reference.h), with the CPU backend in fp32
// on the same bf16 inputs, rounded to bf16, as the same-precision baseline:
//   max|tc - fp64| <= 2 * max|cpu - fp64| + floor   for out, lse (whose -inf rows must agree), dq, dk, dv.
// Cases: causal and not, GQA 7:1 and 1:1, varlen segments of odd lengths (not multiples of the 64-row / 64-key
// tiles), decode-like Tq = 1 after a cache (bottom-right), rows that see no key, head dims 64 / 80 / 128 and
// padded ones (20 -> 32: unaligned rows, element loads; 48 -> 64), strided q. Also the path choice
// (AttnKernelPath, VREFLECT_ATTENTION) and one model-level run: the tiny checkpoint's GPU session (ViT windows +
// full attention, prefill, decode steps of one query row) with VREFLECT_ATTENTION=tc against the CPU model.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "cuda/model/gpu_session.h"
#include "cuda_tests/device_buffer.h"
#include "cuda_tests/model_fixture.h"
#include "model/qwen_vl.h"
#include "ops/attention.h"
#include "cuda_tests/scoped_env.h"
#include "tests/harness.h"
#include "tests/reference.h"

namespace vr::test {
namespace {

struct TcCase {
  const char* name;
  int Hq, Hkv, D;
  bool causal;
  std::vector<int32_t> lq, lk;  // segment lengths
  int q_pad;                    // extra elements per q row (q is a slice of a wider row)
};

std::vector<int32_t> offsets(const std::vector<int32_t>& lens) {
  std::vector<int32_t> cu{0};
  for (int32_t l : lens) cu.push_back(cu.back() + l);
  return cu;
}

// fwd: the forward's path (TensorCore, or Wgmma: the Hopper forward, whose backward is the mma.sync one).
void tc_case(const TcCase& c, uint64_t seed, const std::string& variant = "",
             cuda::AttnKernelPath fwd = cuda::AttnKernelPath::TensorCore) {
  Rng rng(seed);
  const std::vector<int32_t> cu_q = offsets(c.lq), cu_k = offsets(c.lk);
  const int64_t Tq = cu_q.back(), Tk = cu_k.back();
  const int64_t WQ = int64_t(c.Hq) * c.D, WK = int64_t(c.Hkv) * c.D, QS = WQ + c.q_pad;
  // q rows of stride QS (the padding holds junk that must not be read)
  const auto q_wide = stored<bf16>(rng.vec(size_t(Tq * QS), -1.5, 1.5));
  const auto k = stored<bf16>(rng.vec(size_t(Tk * WK), -1.5, 1.5)), v = stored<bf16>(rng.vec(size_t(Tk * WK)));
  std::vector<float> q(size_t(Tq * WQ));
  for (int64_t t = 0; t < Tq; t++) std::copy_n(&q_wide[size_t(t * QS)], WQ, &q[size_t(t * WQ)]);
  const auto dout = stored<bf16>(rng.vec(size_t(Tq * WQ)));
  const auto dq0 = stored<bf16>(rng.vec(size_t(Tq * WQ))), dk0 = stored<bf16>(rng.vec(size_t(Tk * WK)));
  const auto dv0 = stored<bf16>(rng.vec(size_t(Tk * WK)));
  const float scale = 1.0f / std::sqrt(float(c.D));
  const std::string tag = std::string(fwd == cuda::AttnKernelPath::Wgmma ? "cuda attention wgmma fwd + tc bwd bf16 "
                                                                         : "cuda attention tensor-core bf16 ") +
                          variant + c.name;

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
  out_cpu = stored<bf16>(out_cpu);
  dq_cpu = stored<bf16>(dq_cpu), dk_cpu = stored<bf16>(dk_cpu), dv_cpu = stored<bf16>(dv_cpu);

  DeviceBuffer<int32_t> d_cuq(cu_q), d_cuk(cu_k);
  DeviceBuffer<bf16> d_q(to_storage<bf16>(q_wide)), d_k(to_storage<bf16>(k)), d_v(to_storage<bf16>(v));
  DeviceBuffer<bf16> d_out(to_storage<bf16>(std::vector<float>(size_t(Tq * WQ), 5.f)));  // junk: all rows written
  DeviceBuffer<float> d_lse(std::vector<float>(size_t(c.Hq * Tq), 5.f));
  cuda::AttnArgs a;
  a.Hq = c.Hq, a.Hkv = c.Hkv, a.D = c.D, a.scale = scale, a.causal = c.causal, a.nseq = p.nseq;
  a.cu_q = d_cuq.get(), a.cu_k = d_cuk.get();
  a.max_seqlen_q = *std::max_element(c.lq.begin(), c.lq.end());
  a.max_seqlen_k = *std::max_element(c.lk.begin(), c.lk.end());
  a.total_q = Tq;
  a.q_stride = QS, a.k_stride = a.v_stride = WK, a.o_stride = WQ;
  cuda::attention_forward(d_out.get(), d_lse.get(), d_q.get(), d_k.get(), d_v.get(), a, nullptr, fwd);
  // The backward on the kernel's own out / lse (as training runs it); dq rows keep the wide stride.
  std::vector<float> dq0_wide(size_t(Tq * QS), 7.f);
  for (int64_t t = 0; t < Tq; t++) std::copy_n(&dq0[size_t(t * WQ)], WQ, &dq0_wide[size_t(t * QS)]);
  DeviceBuffer<bf16> d_dout(to_storage<bf16>(dout)), d_dq(to_storage<bf16>(dq0_wide));
  DeviceBuffer<bf16> d_dk(to_storage<bf16>(dk0)), d_dv(to_storage<bf16>(dv0));
  cuda::attention_backward(d_dq.get(), d_dk.get(), d_dv.get(), d_dout.get(), d_out.get(), d_lse.get(), d_q.get(),
                           d_k.get(), d_v.get(), a, nullptr, cuda::AttnKernelPath::TensorCore);
  const auto out = to_float(d_out.download());
  auto lse = d_lse.download();
  const auto dq_wide = to_float(d_dq.download()), dk = to_float(d_dk.download()), dv = to_float(d_dv.download());
  std::vector<float> dq(size_t(Tq * WQ));
  bool pad_intact = true;
  for (int64_t t = 0; t < Tq; t++) {
    std::copy_n(&dq_wide[size_t(t * QS)], WQ, &dq[size_t(t * WQ)]);
    for (int64_t cc = WQ; cc < QS; cc++) pad_intact &= dq_wide[size_t(t * QS + cc)] == 7.f;
  }

  check_rule(tag + " out", out.data(), out_cpu.data(), out64.data(), out.size(), 1e-6);
  bool inf_same = true;
  for (size_t i = 0; i < lse64.size(); i++) {
    const bool none = std::isinf(lse64[i]);
    inf_same &= (std::isinf(lse[i]) && lse[i] < 0) == none && std::isinf(lse_cpu[i]) == none;
    if (none) lse[i] = lse_cpu[i] = 0.f, lse64[i] = 0.0;
  }
  check_true(tag + " lse -inf rows (no visible key) match", inf_same);
  check_rule(tag + " lse", lse.data(), lse_cpu.data(), lse64.data(), lse64.size(), 1e-6);
  check_rule(tag + " dq", dq.data(), dq_cpu.data(), dq64.data(), dq.size(), 1e-6);
  check_rule(tag + " dk", dk.data(), dk_cpu.data(), dk64.data(), dk.size(), 1e-6);
  check_rule(tag + " dv", dv.data(), dv_cpu.data(), dv64.data(), dv.size(), 1e-6);
  if (c.q_pad) check_true(tag + " dq row padding untouched", pad_intact);
}

const TcCase kTcCases[] = {
    {"D=128 GQA 7:1 causal prefill, segments 70,129,5", 7, 1, 128, true, {70, 129, 5}, {70, 129, 5}, 0},
    {"D=64 1:1 non-causal cross lengths q 33,90 k 100,17", 2, 2, 64, false, {33, 90}, {100, 17}, 0},
    {"D=80 GQA 3:1 causal, strided q (fused qkv row), q 77 k 77", 3, 1, 80, true, {77}, {77}, 2 * 80},
    {"D=128 GQA 4:1 causal decode Tq=1 after caches of 150, 41 keys", 4, 1, 128, true, {1, 1}, {150, 41}, 0},
    {"D=64 causal, q 10 k 4 (6 rows see no key) + q 3 k 67", 2, 2, 64, true, {10, 3}, {4, 67}, 0},
    {"D=20 (padded to 32, unaligned rows) causal GQA 2:1, q 41 k 41", 2, 1, 20, true, {41}, {41}, 3},
    {"D=48 (padded to 64) non-causal, q 65 k 130", 1, 1, 48, false, {65}, {130}, 0},
};

// The tile-shape variants (head dims 81..128): small shapes that still cross every variant's tile edges (32 / 64 / 128
// keys, 64 / 128 / 256 query rows: 70 + 133 + 5 causal, 261 rows), GQA, cross lengths, rows that see no key, a
// padded head dim with element loads and a strided q, decode after a cache, a diagonal on the tile edges.
const TcCase kTileCases[] = {
    {"D=128 GQA 2:1 causal prefill, segments 70,133,5", 2, 1, 128, true, {70, 133, 5}, {70, 133, 5}, 0},
    {"D=128 1:1 non-causal cross lengths q 261,33 k 100,17", 1, 1, 128, false, {261, 33}, {100, 17}, 0},
    {"D=100 (padded to 128, element loads) causal, q 10,3 k 4,67 (rows see no key), strided q", 2, 2, 100, true,
     {10, 3}, {4, 67}, 4},
    {"D=96 GQA 2:1 causal decode Tq=1 after 150 keys", 2, 1, 96, true, {1}, {150}, 0},
    // shift 1: rows 31, 63, 127 see exactly the first key of the next 32 / 64 / 128-key tile (a warp's causal skip)
    {"D=128 causal chunk after a 1-key cache, q 140 k 141", 1, 1, 128, true, {140}, {141}, 0},
};

// VREFLECT_ATTENTION for a scope; the next attention reads it again.
struct ScopedAttnEnv : ScopedEnv {
  explicit ScopedAttnEnv(const char* value) : ScopedEnv("VREFLECT_ATTENTION", value, cuda::attention_env_changed) {}
};

}  // namespace

VR_TEST(cuda_attention_tc_forward_backward) {
  uint64_t seed = 61;
  for (const TcCase& c : kTcCases) tc_case(c, seed++);
}

// Every forward and backward tile variant by the same rule: variant i of the forward runs with variant i (mod count)
// of the backward, so each instantiated kernel runs on every tile case.
VR_TEST(cuda_attention_tc_tile_variants) {
  const std::vector<std::string> fwd = cuda::attention_tc_tiles(false), bwd = cuda::attention_tc_tiles(true);
  check_true("tile variants: the forward has several, the backward at least 2", fwd.size() >= 4 && bwd.size() >= 2);
  for (size_t i = 0; i < std::max(fwd.size(), bwd.size()); i++) {
    const std::string f = fwd[i % fwd.size()], b = bwd[i % bwd.size()];
    ScopedEnv ef("VREFLECT_ATTENTION_TILE_FWD", f.c_str(), cuda::attention_env_changed);
    ScopedEnv eb("VREFLECT_ATTENTION_TILE_BWD", b.c_str(), cuda::attention_env_changed);
    check_true("tile variant fwd " + f + " / bwd " + b + " is the one selected",
               cuda::attention_tc_tile(false) == f && cuda::attention_tc_tile(true) == b);
    uint64_t seed = 91;
    for (const TcCase& c : kTileCases) tc_case(c, seed++, "fwd " + f + " bwd " + b + ": ");
  }
}

// The Hopper wgmma forward (attention_wgmma.cu; on the emulator the modelled wgmma), every tile variant, by the same
// rule (its backward, the mma.sync one, runs on its out / lse): cases that cross the 64 / 128-row and 64 / 128-key
// tiles, GQA, cross lengths, rows that see no key, padded head dims with element loads and strided q, decode.
const TcCase kWgmmaCases[] = {
    {"D=128 GQA 2:1 causal prefill, segments 70,133,5", 2, 1, 128, true, {70, 133, 5}, {70, 133, 5}, 0},
    {"D=128 1:1 non-causal cross lengths q 150,33 k 100,17", 1, 1, 128, false, {150, 33}, {100, 17}, 0},
    {"D=100 (padded to 128, element loads) causal, q 10,3 k 4,67 (rows see no key), strided q", 2, 2, 100, true,
     {10, 3}, {4, 67}, 4},
    {"D=64 (padded to 128) GQA 2:1 causal decode Tq=1 after 150 keys", 2, 1, 64, true, {1}, {150}, 0},
    {"D=128 causal chunk after a 1-key cache, q 140 k 141", 1, 1, 128, true, {140}, {141}, 0},
};

VR_TEST(cuda_attention_wgmma_forward) {
  if (cuda::attention_wgmma_state() != cuda::WgmmaState::Ready) {  // a GPU without it (the emulator: always there)
    std::printf("  (skipped: no wgmma path on this device: not sm_90, no sm_90a code, or its self-check failed)\n");
    return;
  }
  for (const std::string& tile : cuda::attention_wgmma_tiles()) {
    ScopedEnv et("VREFLECT_ATTENTION_TILE_WGMMA", tile.c_str(), cuda::attention_env_changed);
    check_true("wgmma tile " + tile + " is the one selected", cuda::attention_wgmma_tile() == tile);
    uint64_t seed = 131;
    for (const TcCase& c : kWgmmaCases) tc_case(c, seed++, "tile " + tile + ": ", cuda::AttnKernelPath::Wgmma);
  }
}

VR_TEST(cuda_attention_tc_tile_choice) {
  const std::vector<std::string> fwd = cuda::attention_tc_tiles(false), bwd = cuda::attention_tc_tiles(true);
  {
    ScopedEnv ef("VREFLECT_ATTENTION_TILE_FWD", nullptr, cuda::attention_env_changed);
    ScopedEnv eb("VREFLECT_ATTENTION_TILE_BWD", "auto", cuda::attention_env_changed);
    check_true("tile variants: unset / auto run the default (today's 64x64w4)",
               cuda::attention_tc_tile(false) == "64x64w4" && cuda::attention_tc_tile(true) == "64x64w4" &&
                   fwd[0] == "64x64w4" && bwd[0] == "64x64w4");
  }
  {
    ScopedEnv ef("VREFLECT_ATTENTION_TILE_FWD", "64x64", cuda::attention_env_changed);
    std::string msg;
    try {
      cuda::attention_tc_tile(false);
    } catch (const std::exception& e) {
      msg = e.what();
    }
    check_true("VREFLECT_ATTENTION_TILE_FWD=64x64 is a one-line error naming the allowed values (" + msg + ")",
               msg.find("VREFLECT_ATTENTION_TILE_FWD=64x64 is not one of auto, 64x64w4") != std::string::npos &&
                   msg.find("128x64w4s") != std::string::npos && msg.find('\n') == std::string::npos);
  }
  {
    ScopedEnv eb("VREFLECT_ATTENTION_TILE_BWD", "256x32w8s", cuda::attention_env_changed);  // a forward-only shape
    expect_throw("VREFLECT_ATTENTION_TILE_BWD=256x32w8s", [] { cuda::attention_tc_tile(true); });
  }
  {  // refused on any path, also where the tiled kernels would not run (the scalar kernel, head dim 64)
    ScopedEnv ef("VREFLECT_ATTENTION_TILE_FWD", "9x9", cuda::attention_env_changed);
    expect_throw("VREFLECT_ATTENTION_TILE_FWD=9x9 on the scalar path",
                 [] { cuda::attention_kernel_resolve(cuda::AttnKernelPath::Scalar, 64, true); });
  }
}

// ldmatrix (modelled on the emulator, real on a GPU) gives the registers of the 4-byte fragment loads, and both
// follow the PTX ISA's layout: a0 of lane 4g + t holds A[g][2t] (low half) and A[g][2t + 1].
VR_TEST(cuda_attention_tc_fragment_loads) {
  DeviceBuffer<uint32_t> d(std::vector<uint32_t>(32 * 24, 0u));
  cuda::mma_fragment_probe(d.get());
  const std::vector<uint32_t> r = d.download();
  bool a_same = true, bnk_same = true, bkn_same = true, layout = true;
  for (int lane = 0; lane < 32; lane++) {
    const uint32_t* o = &r[size_t(lane) * 24];
    for (int i = 0; i < 4; i++) {
      a_same &= o[i] == o[4 + i];
      bnk_same &= o[8 + i] == o[12 + i];
      bkn_same &= o[16 + i] == o[20 + i];
    }
    const int g = lane / 4, t = lane % 4;
    auto pair = [](int row, int col0) {  // the probe's tile: element [row][col] = row * 16 + col, as bf16 bits
      return uint32_t(f32_to_bf16(float(row * 16 + col0))) | (uint32_t(f32_to_bf16(float(row * 16 + col0 + 1))) << 16);
    };
    layout &= o[4] == pair(g, 2 * t) && o[5] == pair(g + 8, 2 * t) && o[6] == pair(g, 2 * t + 8) &&
              o[7] == pair(g + 8, 2 * t + 8);
    layout &= o[12] == pair(g, 2 * t) && o[13] == pair(g, 2 * t + 8) && o[14] == pair(g + 8, 2 * t);
  }
  check_true("ldmatrix x4 A fragment = the 4-byte loads (all 32 lanes)", a_same);
  check_true("ldmatrix x4 B fragments from [n][k] = the 4-byte loads", bnk_same);
  check_true("ldmatrix x4 .trans B fragments from [k][n] = the 4-byte loads from [n][k]", bkn_same);
  check_true("fragment registers follow the PTX ISA layout (A a0..a3, B b0 b1)", layout);
}

// cp.async lands what it was given (and zeros for a zero-size source) once waited for; on the emulator, whose model
// lands a copy only in the issuing thread's wait, not before: a kernel that forgets a wait reads stale data there
// (with CUDAEMU_CP_ASYNC=early, at issue: a buffer refilled too early shows up instead).
VR_TEST(cuda_attention_tc_cp_async) {
  std::vector<float> vals(256);
  for (int i = 0; i < 256; i++) vals[size_t(i)] = float(i + 1);
  DeviceBuffer<bf16> src(to_storage<bf16>(vals));
  DeviceBuffer<uint32_t> d(std::vector<uint32_t>(161, 7u));
  cuda::cp_async_probe(d.get(), src.get());
  const std::vector<uint32_t> r = d.download();
  bool landed = true, zero = true, late = true;
  for (int lane = 0; lane < 32; lane++) {
    const uint32_t* o = &r[size_t(lane) * 5];
    const uint32_t want = f32_to_bf16(float(8 * lane + 1));
    landed &= o[2] == want && o[3] == want;
    zero &= o[4] == 0u;
    late &= o[0] == 0u && o[1] == 0u;
  }
  check_true("cp.async: group 1 landed after wait_group 1, group 2 after wait_group 0 (all lanes)", landed);
  check_true("cp.async with a zero-size source fills 16 zero bytes", zero);
  if (r[160] == 1) {  // the emulator: its model's timing, CUDAEMU_CP_ASYNC=late (default) or early
    const char* mode = std::getenv("CUDAEMU_CP_ASYNC");
    if (mode && std::string(mode) == "early") {
      bool early = true;
      for (int lane = 0; lane < 32; lane++) early &= r[size_t(lane) * 5] != 0u && r[size_t(lane) * 5 + 1] != 0u;
      check_true("cp.async (emulator model, CUDAEMU_CP_ASYNC=early): copies land at issue, before any wait", early);
    } else {
      check_true("cp.async (emulator model): nothing lands before the issuing thread's wait", late);
    }
  }
}

VR_TEST(cuda_attention_tc_path_choice) {
  using cuda::AttnKernelPath;
  {
    ScopedAttnEnv env("auto");
#if defined(VR_CUDA_EMULATED)
    check_true("VREFLECT_ATTENTION=auto on the emulator resolves to the scalar kernel",
               cuda::attention_kernel_resolve(AttnKernelPath::Auto, 128, true) == AttnKernelPath::Scalar);
#else  // a GPU (the test binary runs on sm_80+ machines): tensor cores, mma.sync or wgmma
    check_true("VREFLECT_ATTENTION=auto on an sm_80+ GPU resolves to a tensor-core kernel",
               cuda::attention_kernel_resolve(AttnKernelPath::Auto, 128, true) != AttnKernelPath::Scalar);
#endif
    check_true("an explicit TensorCore path runs the tensor-core kernel",
               cuda::attention_kernel_resolve(AttnKernelPath::TensorCore, 80, true) == AttnKernelPath::TensorCore);
    expect_throw("the tensor-core path for D=160",
                 [] { cuda::attention_kernel_resolve(AttnKernelPath::TensorCore, 160, true); });
    expect_throw("the tensor-core path for fp32 storage",
                 [] { cuda::attention_kernel_resolve(AttnKernelPath::TensorCore, 64, false); });
  }
  {
    ScopedAttnEnv env("tc");
    check_true("VREFLECT_ATTENTION=tc resolves to the tensor-core kernel",
               cuda::attention_kernel_resolve(AttnKernelPath::Auto, 16, true) == AttnKernelPath::TensorCore);
    check_true("an explicit Scalar path wins over VREFLECT_ATTENTION=tc",
               cuda::attention_kernel_resolve(AttnKernelPath::Scalar, 16, true) == AttnKernelPath::Scalar);
    expect_throw("VREFLECT_ATTENTION=tc with fp32 storage",
                 [] { cuda::attention_kernel_resolve(AttnKernelPath::Auto, 64, false); });
  }
  {
    ScopedAttnEnv env("scalar");
    check_true("VREFLECT_ATTENTION=scalar resolves to the scalar kernel",
               cuda::attention_kernel_resolve(AttnKernelPath::Auto, 128, true) == AttnKernelPath::Scalar);
  }
#if defined(VR_CUDA_EMULATED)
  {
    ScopedAttnEnv env("wgmma");
    check_true("VREFLECT_ATTENTION=wgmma on the emulator resolves to the modelled wgmma forward",
               cuda::attention_kernel_resolve(AttnKernelPath::Auto, 128, true) == AttnKernelPath::Wgmma);
    expect_throw("VREFLECT_ATTENTION=wgmma with fp32 storage",
                 [] { cuda::attention_kernel_resolve(AttnKernelPath::Auto, 128, false); });
    expect_throw("VREFLECT_ATTENTION=wgmma for D=160",
                 [] { cuda::attention_kernel_resolve(AttnKernelPath::Auto, 160, true); });
  }
#endif
  {
    ScopedEnv et("VREFLECT_ATTENTION_TILE_WGMMA", "9x9", cuda::attention_env_changed);
    expect_throw("VREFLECT_ATTENTION_TILE_WGMMA=9x9 (refused on any path)",
                 [] { cuda::attention_kernel_resolve(cuda::AttnKernelPath::Scalar, 64, true); });
  }
  {
    ScopedAttnEnv env("fast");
    expect_throw("VREFLECT_ATTENTION=fast", [] { cuda::attention_kernel_resolve(AttnKernelPath::Auto, 64, true); });
  }
}

}  // namespace vr::test
