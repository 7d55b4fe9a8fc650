// Kernel timing tool (not a test): GFLOP/s and GB/s of the op layer on the 7B-shaped problems.
//   GEMM  M=305, (K,N) = (3584,3584), (3584,18944), (18944,3584), bf16 and f32 weights;
//   GEMV  M=1 on the same bf16 weights (GB/s of weight bytes), GEMV kernel vs oneDNN;
//   attention: LLM prefill L=305..4096 (28:4 GQA, D=128, causal), decode (Lq=1 against L keys),
//              ViT windows of 64 tokens and full ViT attention (16 heads, D=80).
// Build and run: scripts/kernel-bench.sh [build-dir] [args]. Args: --quick (fewer shapes), --threads N,
// --only bw|gemm|gemv|bwd|attn, --cpu-time (see now_s), --builtin (GEMM section on the built-in kernels).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <ctime>
#include <vector>

#include "bench/read_bandwidth.h"
#include "core/dtype.h"
#include "core/parallel.h"
#include "cpu/cpu_ops.h"
#include "ops/attention.h"
#include "ops/linear.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Timing {
  double best = 1e30, median = 0;
};

// --cpu-time: time by process CPU time divided by the thread count instead of wall time. On a machine shared
// with other jobs, wall time includes time the threads waited for a core; CPU time does not (but it includes
// OpenMP spin-waiting, so it is an optimistic figure only when the machine is busy).
bool g_cpu_time = false;

double now_s() {
  if (g_cpu_time) {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec)) / vr::num_threads();
  }
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

// Runs fn `reps` times after one warm-up call; seconds per call (best and median).
template <class F>
Timing time_it(F fn, int reps) {
  fn();
  std::vector<double> t;
  for (int r = 0; r < reps; r++) {
    const double t0 = now_s();
    fn();
    t.push_back(now_s() - t0);
  }
  std::sort(t.begin(), t.end());
  return {t.front(), t[t.size() / 2]};
}

std::vector<float> random_floats(size_t n, uint64_t seed, float scale = 1.f) {
  std::vector<float> v(n);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& x : v) {
    s ^= s << 13; s ^= s >> 7; s ^= s << 17;
    x = scale * (float(s >> 40) / float(1 << 24) * 2.f - 1.f);
  }
  return v;
}

std::vector<uint16_t> random_bf16(size_t n, uint64_t seed) {
  std::vector<float> f = random_floats(n, seed, 0.05f);
  std::vector<uint16_t> b(n);
  for (size_t i = 0; i < n; i++) b[i] = vr::f32_to_bf16(f[i]);
  return b;
}

const char* path_name(vr::cpu::GemmPath p) {
  switch (p) {
    case vr::cpu::GemmPath::Auto: return "auto";
    case vr::cpu::GemmPath::OneDnn: return "onednn";
    case vr::cpu::GemmPath::Builtin: return "builtin";
    case vr::cpu::GemmPath::Gemv: return "gemv";
  }
  return "?";
}

void bench_gemm(bool quick) {
  struct KN { int64_t K, N; };
  const KN shapes[] = {{3584, 3584}, {3584, 18944}, {18944, 3584}};
  const int64_t M = 305;
  std::printf("\n== GEMM M=%lld (prefill), GFLOP/s = 2MNK/t (best / median)\n", (long long)M);
  for (const KN& s : shapes) {
    const auto x = random_floats(size_t(M * s.K), 1);
    std::vector<float> out(size_t(M * s.N));
    const auto w16 = random_bf16(size_t(s.N * s.K), 2);
    vr::Linear L;
    L.N = s.N;
    L.K = s.K;
    L.dtype = vr::DType::BF16;
    L.w = w16.data();
    const double flop = 2.0 * M * s.N * s.K;
    auto t = time_it([&] { vr::linear_forward(out.data(), x.data(), L, M); }, quick ? 2 : 4);
    std::printf("  bf16 K=%-5lld N=%-5lld %7.1f / %7.1f GFLOP/s  (%.1f ms)\n", (long long)s.K, (long long)s.N,
                flop / t.best / 1e9, flop / t.median / 1e9, t.best * 1e3);
    if (!quick) {
      const auto w32 = random_floats(size_t(s.N * s.K), 3, 0.05f);
      L.dtype = vr::DType::F32;
      L.w = w32.data();
      auto t2 = time_it([&] { vr::linear_forward(out.data(), x.data(), L, M); }, 3);
      std::printf("  f32  K=%-5lld N=%-5lld %7.1f / %7.1f GFLOP/s  (%.1f ms)\n", (long long)s.K, (long long)s.N,
                  flop / t2.best / 1e9, flop / t2.median / 1e9, t2.best * 1e3);
    }
  }
}

void bench_linear_backward() {
  const int64_t M = 305, K = 3584, N = 3584;
  std::printf("\n== linear_backward M=%lld K=%lld N=%lld (dinp + dweight), GFLOP/s = 4MNK/t\n", (long long)M,
              (long long)K, (long long)N);
  const auto x = random_floats(size_t(M * K), 1), dy = random_floats(size_t(M * N), 2);
  std::vector<float> dx(size_t(M * K)), dw(size_t(N * K));
  const auto w16 = random_bf16(size_t(N * K), 3);
  const auto w32 = random_floats(size_t(N * K), 4, 0.05f);
  for (int bf16 = 1; bf16 >= 0; bf16--) {
    vr::Linear L;
    L.N = N;
    L.K = K;
    L.dtype = bf16 ? vr::DType::BF16 : vr::DType::F32;
    L.w = bf16 ? static_cast<const void*>(w16.data()) : static_cast<const void*>(w32.data());
    auto t = time_it([&] { vr::linear_backward(dx.data(), dw.data(), nullptr, dy.data(), x.data(), L, M); }, 3);
    const double flop = 4.0 * M * N * K;
    std::printf("  %s %7.1f / %7.1f GFLOP/s  (%.1f ms)\n", bf16 ? "bf16" : "f32 ", flop / t.best / 1e9,
                flop / t.median / 1e9, t.best * 1e3);
  }
}

void bench_gemv(bool quick) {
  struct KN { int64_t K, N; };
  const KN shapes[] = {{3584, 3584}, {3584, 18944}, {18944, 3584}};
  std::printf("\n== GEMV bf16 weights, M rows (decode), GB/s of weight bytes read (best / median)\n");
  for (const KN& s : shapes) {
    // Cycle through enough copies that the weights cannot stay in the last-level cache between calls.
    const size_t bytes = size_t(s.N * s.K) * 2;
    const int copies = int(std::max<size_t>(1, (256u << 20) / bytes));
    std::vector<std::vector<uint16_t>> ws;
    for (int c = 0; c < copies; c++) ws.push_back(random_bf16(size_t(s.N * s.K), 10 + c));
    const auto x = random_floats(size_t(4 * s.K), 4);
    std::vector<float> out(size_t(4 * s.N));
    for (int64_t M : {int64_t(1), int64_t(4)}) {
      if (quick && M != 1) continue;
      for (vr::cpu::GemmPath p : {vr::cpu::GemmPath::Gemv, vr::cpu::GemmPath::OneDnn}) {
        vr::cpu::set_gemm_path(p);
        int next = 0;
        auto t = time_it(
            [&] {
              vr::Linear L;
              L.N = s.N;
              L.K = s.K;
              L.dtype = vr::DType::BF16;
              L.w = ws[size_t(next++ % copies)].data();
              vr::linear_forward(out.data(), x.data(), L, M);
            },
            quick ? 6 : 12);
        std::printf("  M=%lld K=%-5lld N=%-5lld %-7s %6.1f / %6.1f GB/s  (%.2f ms, %.1f MB)\n", (long long)M,
                    (long long)s.K, (long long)s.N, path_name(p), bytes / t.best / 1e9, bytes / t.median / 1e9,
                    t.best * 1e3, bytes / 1e6);
      }
    }
  }
  vr::cpu::set_gemm_path(vr::cpu::GemmPath::Auto);
}

struct AttnSetup {
  int Hq, Hkv, D;
  bool causal;
  std::vector<int32_t> cu_q, cu_k;
};

// Multiply-adds counted as 2 FLOPs: QK^T and PV over the visible (query, key) pairs.
double attn_flops(const AttnSetup& a) {
  double pairs = 0;
  for (size_t s = 0; s + 1 < a.cu_q.size(); s++) {
    const int64_t Lq = a.cu_q[s + 1] - a.cu_q[s], Lk = a.cu_k[s + 1] - a.cu_k[s];
    for (int64_t i = 0; i < Lq; i++)
      pairs += a.causal ? double(std::max<int64_t>(0, std::min<int64_t>(Lk, i + 1 + Lk - Lq))) : double(Lk);
  }
  return pairs * a.Hq * a.D * 4.0;
}

void run_attention(const char* label, const AttnSetup& a, int reps, bool backward = false, bool bf16 = false) {
  const int64_t Tq = a.cu_q.back(), Tk = a.cu_k.back();
  const auto q = random_floats(size_t(Tq * a.Hq * a.D), 5);
  const auto k = random_floats(size_t(Tk * a.Hkv * a.D), 6);
  const auto v = random_floats(size_t(Tk * a.Hkv * a.D), 7);
  std::vector<float> out(q.size()), lse(size_t(a.Hq * Tq));
  vr::AttnParams p;
  p.Hq = a.Hq;
  p.Hkv = a.Hkv;
  p.D = a.D;
  p.scale = 1.f / std::sqrt(float(a.D));
  p.causal = a.causal;
  p.nseq = int(a.cu_q.size() - 1);
  p.cu_q = a.cu_q.data();
  p.cu_k = a.cu_k.data();
  p.q_stride = p.o_stride = int64_t(a.Hq) * a.D;
  p.k_stride = p.v_stride = int64_t(a.Hkv) * a.D;
  p.bf16 = bf16;
  const double flop = attn_flops(a);
  auto t = time_it([&] { vr::attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), p); }, reps);
  const double kv_bytes = double(Tk) * a.Hkv * a.D * 4 * 2;
  std::printf("  %-40s fwd%s %7.1f GFLOP/s %7.1f GB/s(kv)  %8.2f ms\n", label, bf16 ? "-bf16" : "", flop / t.best / 1e9,
              kv_bytes / t.best / 1e9, t.best * 1e3);
  if (backward && !bf16) {
    const auto dout = random_floats(out.size(), 8);
    std::vector<float> dq(q.size()), dk(k.size()), dv(v.size());
    auto tb = time_it(
        [&] {
          vr::attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), out.data(), lse.data(), q.data(),
                                 k.data(), v.data(), p);
        },
        reps);
    std::printf("  %-40s bwd %7.1f GFLOP/s (2.5x fwd flops)  %8.2f ms\n", label, 2.5 * flop / tb.best / 1e9,
                tb.best * 1e3);
  }
}

// Each shape in fp32 and with the bf16 tiles (AttnParams::bf16, --dtype bf16 inference; forward only).
void bench_attention(bool quick) {
  std::printf("\n== attention (fp32, and fwd-bf16: q/k/v/P in bf16), GFLOP/s over visible pairs\n");
  for (int L : {305, 1024, 2048, 4096}) {
    if (quick && L > 1024) continue;
    AttnSetup a{28, 4, 128, true, {0, L}, {0, L}};
    const std::string label = "LLM prefill L=" + std::to_string(L) + " 28:4 D128 causal";
    run_attention(label.c_str(), a, L >= 2048 ? 2 : 4, L == 305);
    run_attention(label.c_str(), a, L >= 2048 ? 2 : 4, false, true);
  }
  for (int L : {305, 1024, 4096}) {
    AttnSetup a{28, 4, 128, true, {0, 1}, {0, L}};
    const std::string label = "LLM decode Lq=1 Lk=" + std::to_string(L);
    run_attention(label.c_str(), a, 20);
    run_attention(label.c_str(), a, 20, false, true);
  }
  for (int N : {1024, 4096}) {
    if (quick && N > 1024) continue;
    AttnSetup w{16, 16, 80, false, {0}, {0}};
    for (int s = 0; s < N / 64; s++) {
      w.cu_q.push_back(w.cu_q.back() + 64);
      w.cu_k.push_back(w.cu_k.back() + 64);
    }
    const std::string wl = "ViT windows 64 x " + std::to_string(N / 64) + " D80 16h";
    run_attention(wl.c_str(), w, 4, N == 1024);
    run_attention(wl.c_str(), w, 4, false, true);
    AttnSetup f{16, 16, 80, false, {0, N}, {0, N}};
    const std::string fl = "ViT full N=" + std::to_string(N) + " D80 16h";
    run_attention(fl.c_str(), f, N >= 4096 ? 2 : 3);
    run_attention(fl.c_str(), f, N >= 4096 ? 2 : 3, false, true);
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string only;
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) vr::set_num_threads(std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else if (!std::strcmp(argv[i], "--cpu-time")) g_cpu_time = true;
    else if (!std::strcmp(argv[i], "--builtin")) vr::cpu::set_gemm_path(vr::cpu::GemmPath::Builtin);
  }
  const vr::CpuFeatures& f = vr::cpu_features();
  std::printf("cpu: %s | avx2 %d avx512f %d avx512_bf16 %d amx_bf16 %d | threads %d\n", f.model.c_str(), f.avx2,
              f.avx512f, f.avx512_bf16, f.amx_bf16, vr::num_threads());
  std::printf("gemm: f32 %s | bf16 %s\n", vr::linear_backend_name(vr::DType::F32),
              vr::linear_backend_name(vr::DType::BF16));
  if (only.empty() || only == "bw") {
    const auto bw = vr::bench::measure_read_bandwidth(1ull << 30, quick ? 3 : 5, vr::num_threads());
    std::printf("memory read bandwidth (%d threads, %s): best %.1f GB/s, median %.1f GB/s\n", bw.threads, bw.kernel,
                bw.best_gbps, bw.median_gbps);
  }
  if (only.empty() || only == "gemm") bench_gemm(quick);
  if (only.empty() || only == "gemv") bench_gemv(quick);
  if (only.empty() || only == "bwd") bench_linear_backward();
  if (only.empty() || only == "attn") bench_attention(quick);
  return 0;
}
