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
#if defined(VR_CUDA_EMULATED)
// cudaemu::set_max_dyn_smem_optin (the emulated GPU's shared memory per block), banks::Recorder (which kernels ran).
// First: the emulator must be declared before device_buffer.h's runtime subset.
#include "cuda_emu/cuda_compat.h"
#endif
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>

#include "cuda/model/gpu_session.h"
#include "cuda_tests/attention_case.h"
#include "cuda_tests/device_buffer.h"
#include "cuda_tests/model_fixture.h"
#include "model/qwen_vl.h"
#include "ops/attention.h"
#include "cuda_tests/scoped_env.h"
#include "tests/harness.h"
#include "tests/reference.h"

namespace vr::test {
namespace {

const AttnCase kTcCases[] = {
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
const AttnCase kTileCases[] = {
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
  explicit ScopedAttnEnv(const char* value) : ScopedEnv("VREFLECT_ATTENTION", value, cuda::env_switches_changed) {}
};

// Runs `body` for backward variant `bwd`. A GPU with less opt-in shared memory than a double-buffered variant needs
// (sm_86 / sm_89: 99 KiB; the emulator under CUDAEMU_MAX_DYN_SMEM_KIB=99) refuses it in one line naming the cause:
// that counts as a pass, said so; any other error, or a refusal of 64x32w4d (68.5 KiB, meant for every sm_80+ GPU),
// fails.
template <class F>
void run_unless_smem_refused(const std::string& bwd, F&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    const bool refused = msg.find("more than this GPU allows") != std::string::npos && bwd.back() == 'd' &&
                         bwd != "64x32w4d" && msg.find('\n') == std::string::npos;
    check_true("backward " + bwd + " refused for its shared memory on this GPU, in one line (" + msg + ")", refused);
  }
}

}  // namespace

VR_TEST(cuda_attention_tc_forward_backward) {
  uint64_t seed = 61;
  for (const AttnCase& c : kTcCases) tc_case(c, seed++);
}

// Every forward and backward tile variant by the same rule: variant i of the forward runs with variant i (mod count)
// of the backward, so each instantiated kernel runs on every tile case.
VR_TEST(cuda_attention_tc_tile_variants) {
  const std::vector<std::string> fwd = cuda::attention_tc_tiles(false), bwd = cuda::attention_tc_tiles(true);
  check_true("tile variants: the forward has several, the backward at least 2", fwd.size() >= 4 && bwd.size() >= 2);
  for (size_t i = 0; i < std::max(fwd.size(), bwd.size()); i++) {
    const std::string f = fwd[i % fwd.size()], b = bwd[i % bwd.size()];
    ScopedEnv ef("VREFLECT_ATTENTION_TILE_FWD", f.c_str(), cuda::env_switches_changed);
    ScopedEnv eb("VREFLECT_ATTENTION_TILE_BWD", b.c_str(), cuda::env_switches_changed);
    check_true("tile variant fwd " + f + " / bwd " + b + " is the one selected",
               cuda::attention_tc_tile(false) == f && cuda::attention_tc_tile(true) == b);
    run_unless_smem_refused(b, [&] {
      uint64_t seed = 91;
      for (const AttnCase& c : kTileCases) tc_case(c, seed++, "fwd " + f + " bwd " + b + ": ");
    });
  }
}

// The double-buffered backward variants ("d": the next inner tile copied while this one is computed) on segments of
// many inner tiles, so each of the two buffers is refilled several times - in the dK/dV kernel also across the query
// heads of a kv head (GQA: tile n + 1 may be the next head's first) - by the same rule, with the default forward:
// causal and not, varlen, GQA, cross lengths, rows that see no key, a padded head dim with element loads and a
// strided q, and dq-only / dk-dv-only calls (64x32w4d). Head dims 64 / 80 run 64x64w4d whichever "d" variant is
// selected: once. On a GPU with 99 KiB of opt-in shared memory the variants over it are refused (run_unless_smem_refused).
const AttnCase kDoubleBufferCases[] = {
    {"D=128 GQA 2:1 causal prefill, segments 300,70,5", 2, 1, 128, true, {300, 70, 5}, {300, 70, 5}, 0},
    {"D=128 1:1 non-causal cross lengths q 190,33 k 260,17", 1, 1, 128, false, {190, 33}, {260, 17}, 0},
    {"D=100 (padded to 128, element loads) causal GQA 3:1, q 12,200 k 4,230 (rows see no key), strided q", 3, 1, 100,
     true, {12, 200}, {4, 230}, 4},
};
const AttnCase kDoubleBufferSmallD[] = {
    {"D=80 GQA 3:1 causal, strided q, segments 200,9", 3, 1, 80, true, {200, 9}, {200, 9}, 2 * 80},
    {"D=64 1:1 non-causal cross lengths q 150 k 230", 2, 2, 64, false, {150}, {230}, 0},
};

VR_TEST(cuda_attention_tc_backward_double_buffered) {
  std::vector<std::string> dbl;
  for (const std::string& b : cuda::attention_tc_tiles(true))
    if (b.back() == 'd') dbl.push_back(b);
  check_true("double-buffered backward variants: 64x64w4d, 64x32w4d, 128x32w8d, 128x64w8d",
             dbl == std::vector<std::string>{"64x64w4d", "64x32w4d", "128x32w8d", "128x64w8d"});
  for (const std::string& b : dbl) {
    ScopedEnv eb("VREFLECT_ATTENTION_TILE_BWD", b.c_str(), cuda::env_switches_changed);
    check_true("backward variant " + b + " is the one selected", cuda::attention_tc_tile(true) == b);
    run_unless_smem_refused(b, [&] {
      uint64_t seed = 171;
      for (const AttnCase& c : kDoubleBufferCases) tc_case(c, seed++, "bwd " + b + ": ");
    });
  }
  {  // head dims <= 80 run 64x64w4d (67 KiB at DP 80: every sm_80+ GPU) under any "d" variant
    ScopedEnv eb("VREFLECT_ATTENTION_TILE_BWD", "64x64w4d", cuda::env_switches_changed);
    uint64_t seed = 181;
    for (const AttnCase& c : kDoubleBufferSmallD) tc_case(c, seed++, "bwd 64x64w4d: ");
  }
  ScopedEnv eb("VREFLECT_ATTENTION_TILE_BWD", "64x32w4d", cuda::env_switches_changed);  // fits every sm_80+ GPU
  const auto TC = cuda::AttnKernelPath::TensorCore;
  tc_case(kDoubleBufferCases[0], 191, "bwd 64x32w4d dq only: ", TC, TC, Grads::DqOnly);
  tc_case(kDoubleBufferCases[0], 192, "bwd 64x32w4d dk dv only: ", TC, TC, Grads::DkDvOnly);
}

// The Hopper wgmma forward (attention_wgmma.cu; on the emulator the modelled wgmma), every tile variant (the "o"
// overlap and "p" ping-pong ones included), by the same rule (the mma.sync backward runs on its out / lse): cases that
// cross the 64 / 128-row and 64 / 128-key tiles, GQA, cross lengths, rows that see no key, padded head dims 64 / 80 /
// 100 (element loads for 100) and strided q, decode, long key ranges that turn every K / V buffer over.
const AttnCase kWgmmaCases[] = {
    {"D=128 GQA 2:1 causal prefill, segments 70,133,5", 2, 1, 128, true, {70, 133, 5}, {70, 133, 5}, 0},
    {"D=128 1:1 non-causal cross lengths q 150,33 k 100,17", 1, 1, 128, false, {150, 33}, {100, 17}, 0},
    {"D=100 (padded to 128, element loads) causal, q 10,3 k 4,67 (rows see no key), strided q", 2, 2, 100, true,
     {10, 3}, {4, 67}, 4},
    {"D=64 (padded to 128) GQA 2:1 causal decode Tq=1 after 150 keys", 2, 1, 64, true, {1}, {150}, 0},
    {"D=128 causal chunk after a 1-key cache, q 140 k 141", 1, 1, 128, true, {140}, {141}, 0},
    {"D=80 (padded to 128) GQA 3:1 causal, strided q (fused qkv row), q 77 k 77", 3, 1, 80, true, {77}, {77}, 2 * 80},
    // 5 / 9 key tiles of 128 / 64: every K and V buffer refilled at least twice (the "o" variants keep K one tile
    // ahead of V, so their buffers turn over on different tiles)
    {"D=128 GQA 2:1 non-causal long keys, q 70,9 k 520,300", 2, 1, 128, false, {70, 9}, {520, 300}, 0},
};

VR_TEST(cuda_attention_wgmma_forward) {
  if (cuda::attention_wgmma_state() != cuda::WgmmaState::Ready) {  // a GPU without it (the emulator: always there)
    std::printf("  (skipped: no wgmma path on this device: not sm_90, no sm_90a code, or its self-check failed)\n");
    return;
  }
  // VREFLECT_TEST_WGMMA_TILES=<name>,<name>: only those variants (mutation runs); unset: all of them.
  const char* only = std::getenv("VREFLECT_TEST_WGMMA_TILES");
  for (const std::string& tile : cuda::attention_wgmma_tiles()) {
    if (only && *only && ("," + std::string(only) + ",").find("," + tile + ",") == std::string::npos) continue;
    ScopedEnv et("VREFLECT_ATTENTION_TILE_WGMMA", tile.c_str(), cuda::env_switches_changed);
    check_true("wgmma tile " + tile + " is the one selected", cuda::attention_wgmma_tile() == tile);
    uint64_t seed = 131;
    for (const AttnCase& c : kWgmmaCases) tc_case(c, seed++, "tile " + tile + ": ", cuda::AttnKernelPath::Wgmma);
  }
}

VR_TEST(cuda_attention_tc_tile_choice) {
  const std::vector<std::string> fwd = cuda::attention_tc_tiles(false), bwd = cuda::attention_tc_tiles(true);
  {
    ScopedEnv ef("VREFLECT_ATTENTION_TILE_FWD", nullptr, cuda::env_switches_changed);
    ScopedEnv eb("VREFLECT_ATTENTION_TILE_BWD", "auto", cuda::env_switches_changed);
    check_true("tile variants: unset / auto run the default (today's 64x64w4)",
               cuda::attention_tc_tile(false) == "64x64w4" && cuda::attention_tc_tile(true) == "64x64w4" &&
                   fwd[0] == "64x64w4" && bwd[0] == "64x64w4");
  }
  {
    ScopedEnv ef("VREFLECT_ATTENTION_TILE_FWD", "64x64", cuda::env_switches_changed);
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
    ScopedEnv eb("VREFLECT_ATTENTION_TILE_BWD", "256x32w8s", cuda::env_switches_changed);  // a forward-only shape
    expect_throw("VREFLECT_ATTENTION_TILE_BWD=256x32w8s", [] { cuda::attention_tc_tile(true); });
  }
  {  // refused on any path, also where the tiled kernels would not run (the scalar kernel, head dim 64)
    ScopedEnv ef("VREFLECT_ATTENTION_TILE_FWD", "9x9", cuda::env_switches_changed);
    expect_throw("VREFLECT_ATTENTION_TILE_FWD=9x9 on the scalar path",
                 [] { cuda::attention_kernel_resolve(cuda::AttnKernelPath::Scalar, 64, true); });
  }
}

namespace {

// A tile preference for a scope (attention_tc_set_tile_preference), the compiled-in one restored after it.
struct ScopedTilePreference {
  ScopedTilePreference(bool backward, const std::vector<std::string>& names) : backward_(backward) {
    cuda::attention_tc_set_tile_preference(backward, names);
  }
  ~ScopedTilePreference() { cuda::attention_tc_set_tile_preference(backward_, {}); }
  ScopedTilePreference(const ScopedTilePreference&) = delete;
  ScopedTilePreference& operator=(const ScopedTilePreference&) = delete;
  bool backward_;
};

#if defined(VR_CUDA_EMULATED)
// The emulated GPU's opt-in shared memory per block for a scope (what cudaDeviceGetAttribute reports and a launch
// may use; 99 KiB: sm_86 / sm_89, 227 KiB: sm_90), the environment's restored after it.
struct ScopedSmemLimit {
  explicit ScopedSmemLimit(size_t kib) { cudaemu::set_max_dyn_smem_optin(kib * 1024); }
  ~ScopedSmemLimit() { cudaemu::set_max_dyn_smem_optin(0); }
  ScopedSmemLimit(const ScopedSmemLimit&) = delete;
  ScopedSmemLimit& operator=(const ScopedSmemLimit&) = delete;
};
#endif

// The message fn throws ("" when it does not).
template <class F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// dq, dk, dv bits of one tensor-core forward + backward of case c (inputs from `seed`): to compare two runs bit for
// bit (the accuracy against the fp64 reference is tc_case's).
std::vector<uint16_t> backward_bits(const AttnCase& c, uint64_t seed) {
  Rng rng(seed);
  const std::vector<int32_t> cu_q = offsets(c.lq), cu_k = offsets(c.lk);
  const int64_t Tq = cu_q.back(), Tk = cu_k.back(), WQ = int64_t(c.Hq) * c.D, WK = int64_t(c.Hkv) * c.D;
  auto dev = [&](int64_t n) { return DeviceBuffer<bf16>(to_storage<bf16>(rng.vec(size_t(n)))); };
  DeviceBuffer<bf16> q = dev(Tq * WQ), k = dev(Tk * WK), v = dev(Tk * WK), dout = dev(Tq * WQ);
  DeviceBuffer<bf16> out = dev(Tq * WQ), dq = dev(Tq * WQ), dk = dev(Tk * WK), dv = dev(Tk * WK);
  DeviceBuffer<float> lse(std::vector<float>(size_t(c.Hq * Tq), 0.f));
  DeviceBuffer<int32_t> d_cuq(cu_q), d_cuk(cu_k);
  cuda::AttnArgs a;
  a.Hq = c.Hq, a.Hkv = c.Hkv, a.D = c.D, a.scale = 1.0f / std::sqrt(float(c.D)), a.causal = c.causal;
  a.nseq = int(c.lq.size()), a.cu_q = d_cuq.get(), a.cu_k = d_cuk.get(), a.total_q = Tq;
  a.max_seqlen_q = *std::max_element(c.lq.begin(), c.lq.end());
  a.max_seqlen_k = *std::max_element(c.lk.begin(), c.lk.end());
  a.q_stride = a.o_stride = WQ, a.k_stride = a.v_stride = WK;
  const auto TC = cuda::AttnKernelPath::TensorCore;
  cuda::attention_forward(out.get(), lse.get(), q.get(), k.get(), v.get(), a, nullptr, TC);
  cuda::attention_backward(dq.get(), dk.get(), dv.get(), dout.get(), out.get(), lse.get(), q.get(), k.get(), v.get(),
                           a, nullptr, TC);
  std::vector<uint16_t> bits;
  for (const DeviceBuffer<bf16>* g : {&dq, &dk, &dv})
    for (const bf16 x : g->download()) bits.push_back(x.bits);
  return bits;
}

}  // namespace

// `auto` (and the variable unset) runs the first variant of the tile preference whose shared memory fits the device's
// opt-in limit per block, so the default never refuses a GPU; a named variant that does not fit stays a one-line
// error. The selection alone (attention_tc_tile_at) at the opt-in limits of real GPUs, then - on the emulator,
// whose limit a test sets - the whole backward at 99 KiB (sm_86 / sm_89) and 227 KiB (sm_90) under a preference led
// by a shape over 99 KiB: the kernels that ran (launch record), the results against the fp64 reference (tc_case)
// and bit for bit against the variant named outright.
VR_TEST(cuda_attention_tc_tile_auto) {
  constexpr size_t KiB = 1024;
  ScopedEnv eb("VREFLECT_ATTENTION_TILE_BWD", nullptr, cuda::env_switches_changed);  // auto
  ScopedEnv ef("VREFLECT_ATTENTION_TILE_FWD", nullptr, cuda::env_switches_changed);
  const size_t kGpus[] = {99 * KiB, 163 * KiB, 227 * KiB};  // sm_86 / sm_89 / sm_120, sm_80 / sm_87, sm_90
  // The compiled-in preferences: each resolves on every sm_80+ GPU (its last entry fits 99 KiB), to its first
  // entry where that fits.
  for (const bool bwd : {false, true}) {
    const std::vector<std::string> pref = cuda::attention_tc_tile_preference(bwd);
    for (const size_t optin : kGpus) {
      const std::string what = std::string(bwd ? "backward" : "forward") + " auto at " + std::to_string(optin / KiB) +
                               " KiB: ";
      std::string got;
      const std::string err = error_of([&] { got = cuda::attention_tc_tile_at(bwd, optin); });
      check_true(what + "resolves (" + (err.empty() ? got : err) + ")",
                 err.empty() && std::find(pref.begin(), pref.end(), got) != pref.end());
    }
    check_true(std::string(bwd ? "backward" : "forward") + " preference today: 64x64w4 first (unchanged until a GPU "
                                                           "session measures a better one)",
               !pref.empty() && pref.front() == "64x64w4");
  }
  // Every forward variant fits 99 KiB (FwdShape's static_assert): auto can never refuse a forward, whatever leads.
  for (const std::string& f : cuda::attention_tc_tiles(false)) {
    ScopedTilePreference p(false, {f});
    check_true("forward " + f + " fits a 99 KiB GPU", error_of([] { cuda::attention_tc_tile_at(false, 99 * KiB); }).empty());
  }
  // A preference led by shapes over 99 KiB falls to the first that fits.
  {
    ScopedTilePreference p(true, {"128x64w8d", "64x64w4d", "64x32w4d", "64x64w4"});
    check_true("preference 128x64w8d, 64x64w4d, 64x32w4d: 99 KiB -> 64x32w4d, 110 KiB -> 64x64w4d (103), 163 / 227 "
               "KiB -> 128x64w8d (137)",
               cuda::attention_tc_tile_at(true, 99 * KiB) == "64x32w4d" &&
                   cuda::attention_tc_tile_at(true, 110 * KiB) == "64x64w4d" &&
                   cuda::attention_tc_tile_at(true, 163 * KiB) == "128x64w8d" &&
                   cuda::attention_tc_tile_at(true, 227 * KiB) == "128x64w8d");
  }
  {
    ScopedTilePreference p(true, {"128x64w8d", "128x32w8d"});
    const std::string msg = error_of([] { cuda::attention_tc_tile_at(true, 99 * KiB); });
    check_true("a preference with nothing that fits 99 KiB is a one-line error naming it (" + msg + ")",
               msg.find("VREFLECT_ATTENTION_TILE_BWD=auto: no variant of the preference (128x64w8d, 128x32w8d) fits "
                        "this GPU's 99 KiB") != std::string::npos && msg.find('\n') == std::string::npos);
  }
  expect_throw("a preference naming no variant (128x64w8s is forward-only)",
               [] { cuda::attention_tc_set_tile_preference(true, {"128x64w8s"}); });
  check_true("the compiled-in backward preference is back after a test's",
             cuda::attention_tc_tile_preference(true).front() == "64x64w4");
  {
    ScopedEnv named("VREFLECT_ATTENTION_TILE_BWD", "128x64w8d", cuda::env_switches_changed);
    check_true("a variant named outright is the one reported at any limit (its launch refuses it where it does not "
               "fit)", cuda::attention_tc_tile_at(true, 99 * KiB) == "128x64w8d");
  }

  // The whole backward where auto falls back: the same case at 99 KiB and 227 KiB (on a GPU: its own limit).
  const AttnCase c = kDoubleBufferCases[0];  // D=128 GQA 2:1 causal, segments 300,70,5: many inner tiles
  ScopedTilePreference p(true, {"128x64w8d", "64x32w4d"});
#if defined(VR_CUDA_EMULATED)
  const struct {
    size_t kib;
    const char* expect;
    const char* args;  // its kernels' template arguments <DP, W, T, DB>
  } devices[] = {{99, "64x32w4d", "<128, 4, 32, 1>"}, {227, "128x64w8d", "<128, 8, 64, 1>"}};
  for (const auto& d : devices) {
    ScopedSmemLimit limit(d.kib);
    const std::string at = std::to_string(d.kib) + " KiB GPU: ";
    check_true(at + "auto (unset) picks " + d.expect + " (got " + cuda::attention_tc_tile(true) + ")",
               cuda::attention_tc_tile(true) == d.expect);
    tc_case(c, 201, at + "bwd auto: ");
    std::vector<uint16_t> auto_bits;
    std::vector<std::string> ran;
    {
      cudaemu::banks::Recorder rec;
      auto_bits = backward_bits(c, 202);
      for (const auto& k : rec.kernels()) ran.push_back(k.name);
    }
    // The kernels that ran (the emulator's launch record), not only the name the selection reports.
    int tc_bwd = 0, expected = 0;
    for (const std::string& n : ran) {
      const bool bwd_kernel = n.rfind("attention_tc_dq_kernel", 0) == 0 || n.rfind("attention_tc_dkdv_kernel", 0) == 0;
      tc_bwd += bwd_kernel;
      expected += bwd_kernel && n.find(d.args) != std::string::npos;
    }
    check_true(at + "the dQ and dK/dV kernels that ran are " + d.expect + "'s " + d.args,
               tc_bwd == 2 && expected == 2);
    std::vector<uint16_t> named_bits;
    {
      ScopedEnv named("VREFLECT_ATTENTION_TILE_BWD", d.expect, cuda::env_switches_changed);
      named_bits = backward_bits(c, 202);
    }
    check_true(at + "auto's dq / dk / dv equal " + d.expect + "'s named outright, bit for bit",
               auto_bits == named_bits && !auto_bits.empty());
  }
  {  // named outright, a variant over the GPU's limit stays a one-line error
    ScopedSmemLimit limit(99);
    ScopedEnv named("VREFLECT_ATTENTION_TILE_BWD", "128x64w8d", cuda::env_switches_changed);
    const std::string msg = error_of([&] { backward_bits(c, 203); });
    check_true("99 KiB GPU: VREFLECT_ATTENTION_TILE_BWD=128x64w8d is refused in one line (" + msg + ")",
               msg.find("137 KiB of shared memory per block, more than this GPU allows") != std::string::npos &&
                   msg.find("VREFLECT_ATTENTION_TILE_BWD=auto") != std::string::npos &&
                   msg.find('\n') == std::string::npos);
  }
#else
  const std::string got = cuda::attention_tc_tile(true);
  check_true("this GPU: auto picks one of the preference (" + got + ")", got == "128x64w8d" || got == "64x32w4d");
  tc_case(c, 201, "this GPU: bwd auto (" + got + "): ");
  const std::vector<uint16_t> auto_bits = backward_bits(c, 202);
  ScopedEnv named("VREFLECT_ATTENTION_TILE_BWD", got.c_str(), cuda::env_switches_changed);
  check_true("this GPU: auto's dq / dk / dv equal " + got + "'s named outright, bit for bit",
             backward_bits(c, 202) == auto_bits);
#endif
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
    ScopedEnv et("VREFLECT_ATTENTION_TILE_WGMMA", "9x9", cuda::env_switches_changed);
    expect_throw("VREFLECT_ATTENTION_TILE_WGMMA=9x9 (refused on any path)",
                 [] { cuda::attention_kernel_resolve(cuda::AttnKernelPath::Scalar, 64, true); });
  }
  {
    ScopedAttnEnv env("fast");
    expect_throw("VREFLECT_ATTENTION=fast", [] { cuda::attention_kernel_resolve(AttnKernelPath::Auto, 64, true); });
  }
}

}  // namespace vr::test
