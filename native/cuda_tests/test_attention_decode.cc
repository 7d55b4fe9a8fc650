// Split-KV decode attention (cuda attention_decode) by the flash-attention rule against the fp64 dense reference
// (native/tests/reference.h), with the CPU backend in fp32 on the same bf16 values, rounded to bf16, as the
// same-precision baseline: Tq 1 and 3 new rows after c = 0, 1, 17, 300, 4097 cached keys (split boundaries
// falling inside key tiles), GQA 7:1, 4:1 and 1:1, head dims 128 and the generic path (64, 160), the split count
// forced to 1 and to many and the automatic one; a strided q (a slice of the fused qkv row). Also: the result
// does not depend on the split count beyond rounding, and the split heuristic's figures.
#include <algorithm>
#include <cmath>
#include <string>

#include "cuda_tests/device_buffer.h"
#include "ops/attention.h"
#include "tests/harness.h"
#include "tests/reference.h"

namespace vr::test {
namespace {

struct DecodeCase {
  int Hq, Hkv, D;
  int64_t c, Tq;  // cached keys, new rows
  int splits;     // 0: attention_decode_splits
  int q_pad;      // extra elements per q row
};

std::string name(const DecodeCase& k, int splits) {
  return "cuda attention_decode Hq/Hkv " + std::to_string(k.Hq) + "/" + std::to_string(k.Hkv) + " D=" +
         std::to_string(k.D) + " c=" + std::to_string(k.c) + " Tq=" + std::to_string(k.Tq) + " splits=" +
         std::to_string(splits) + (k.q_pad ? " strided q" : "");
}

// Runs one case; returns the kernel's out (fp32 of the bf16 values) followed by its lse, for cross-split comparisons.
std::vector<float> decode_case(const DecodeCase& k, uint64_t seed) {
  Rng rng(seed);
  const int64_t Tq = k.Tq, Tk = k.c + k.Tq;
  const int64_t WQ = int64_t(k.Hq) * k.D, WK = int64_t(k.Hkv) * k.D, QS = WQ + k.q_pad;
  const auto q = stored<bf16>(rng.vec(size_t(Tq * WQ), -1.5, 1.5));
  const auto kk = stored<bf16>(rng.vec(size_t(Tk * WK), -1.5, 1.5)), v = stored<bf16>(rng.vec(size_t(Tk * WK)));
  const float scale = 1.0f / std::sqrt(float(k.D));
  const std::vector<int32_t> cu_q{0, int32_t(Tq)}, cu_k{0, int32_t(Tk)};
  const int splits = k.splits ? k.splits : cuda::attention_decode_splits(Tk, k.Hkv, cuda::device_sm_count());
  const std::string tag = name(k, splits);

  ref::AttnShape sh{k.Hq, k.Hkv, k.D, double(scale), true, cu_q, cu_k};
  std::vector<double> out64(size_t(Tq * WQ)), lse64(size_t(k.Hq * Tq));
  ref::attention<double>(out64, lse64, to_double(q), to_double(kk), to_double(v), sh);

  std::vector<float> q_wide(size_t(Tq * QS), 7.f);
  for (int64_t t = 0; t < Tq; t++) std::copy_n(&q[size_t(t * WQ)], WQ, &q_wide[size_t(t * QS)]);
  AttnParams p;
  p.Hq = k.Hq;
  p.Hkv = k.Hkv;
  p.D = k.D;
  p.scale = scale;
  p.causal = true;
  p.nseq = 1;
  p.cu_q = cu_q.data();
  p.cu_k = cu_k.data();
  p.q_stride = QS;
  p.k_stride = p.v_stride = WK;
  p.o_stride = WQ;
  std::vector<float> out_cpu(size_t(Tq * WQ)), lse_cpu(size_t(k.Hq * Tq));
  vr::attention_forward(out_cpu.data(), lse_cpu.data(), q_wide.data(), kk.data(), v.data(), p);
  out_cpu = stored<bf16>(out_cpu);

  DeviceBuffer<int32_t> d_cuq(cu_q), d_cuk(cu_k);
  DeviceBuffer<bf16> d_q(to_storage<bf16>(q_wide)), d_k(to_storage<bf16>(kk)), d_v(to_storage<bf16>(v));
  DeviceBuffer<bf16> d_out(to_storage<bf16>(std::vector<float>(size_t(Tq * WQ), 3.f)));
  DeviceBuffer<float> d_lse(std::vector<float>(size_t(k.Hq * Tq), 5.f));
  const size_t wsf = cuda::attention_decode_workspace_floats(k.Hq, int(Tq), k.D, splits);
  DeviceBuffer<float> d_ws(wsf);
  cuda::AttnArgs a;
  a.Hq = k.Hq;
  a.Hkv = k.Hkv;
  a.D = k.D;
  a.scale = scale;
  a.causal = true;
  a.nseq = 1;
  a.cu_q = d_cuq.get();
  a.cu_k = d_cuk.get();
  a.max_seqlen_q = int(Tq);
  a.max_seqlen_k = int(Tk);
  a.total_q = Tq;
  a.q_stride = QS;
  a.k_stride = a.v_stride = WK;
  a.o_stride = WQ;
  cuda::attention_decode(d_out.get(), d_lse.get(), d_q.get(), d_k.get(), d_v.get(), a, splits, d_ws.get(), wsf);
  const auto out = to_float(d_out.download()), lse = d_lse.download();
  check_rule(tag + " out", out.data(), out_cpu.data(), out64.data(), out.size(), 1e-6);
  check_rule(tag + " lse", lse.data(), lse_cpu.data(), lse64.data(), lse.size(), 1e-6);
  std::vector<float> r = out;
  r.insert(r.end(), lse.begin(), lse.end());
  return r;
}

}  // namespace

VR_TEST(cuda_attention_decode_rule) {
  uint64_t seed = 301;
  for (int64_t Tq : {1, 3})
    for (int64_t c : {0, 1, 17, 300, 4097}) {
      // 7:1 (the 7B's 28:4 group) with one split and with many (odd boundaries: 4097 + Tq keys over 13 splits)
      decode_case({7, 1, 128, c, Tq, 1, 0}, seed++);
      decode_case({7, 1, 128, c, Tq, c > 40 ? 13 : 2, 0}, seed++);
      decode_case({8, 2, 64, c, Tq, 0, 0}, seed++);  // 4:1, automatic split count, generic head dim (NC 4 < 128)
    }
  decode_case({2, 2, 128, 300, 1, 5, 2 * 128 + 8}, seed++);  // 1:1, q a slice of a fused qkv row
  decode_case({2, 2, 160, 300, 3, 7, 0}, seed++);            // generic path over 128 (NC 8)
  decode_case({4, 1, 128, 4097, 8, 0, 0}, seed++);           // the largest Tq, R = 32 rows per block
  decode_case({7, 1, 128, 300, 1, 256, 0}, seed++);          // more splits than keys / 2: splits of 2 keys
  decode_case({6, 2, 36, 300, 3, 5, 0}, seed++);             // D not a multiple of 8: the element-load path
}

VR_TEST(cuda_attention_decode_split_invariance) {
  // The same inputs through 1, 3 and 40 splits: only the order of the fp32 merges differs (out is bf16: mostly
  // the same bits; lse fp32 within a few ulp of ~7).
  const DecodeCase base{7, 1, 128, 1000, 1, 1, 0};
  const auto o1 = decode_case(base, 401);
  DecodeCase k3 = base, k40 = base;
  k3.splits = 3;
  k40.splits = 40;
  const auto o3 = decode_case(k3, 401), o40 = decode_case(k40, 401);
  double d = 0;
  for (size_t i = 0; i < o1.size(); i++)
    d = std::max({d, std::fabs(double(o3[i]) - o1[i]), std::fabs(double(o40[i]) - o1[i])});
  check_true("cuda attention_decode 1 / 3 / 40 splits: out and lse agree within 1e-5 (max diff " +
                 std::to_string(d) + ")",
             d <= 1e-5);
}

VR_TEST(cuda_attention_decode_splits_choice) {
  // H100: 132 SMs x 4 blocks / 4 KV heads = 132 splits to fill it; at most one split per 256 keys.
  const int a = cuda::attention_decode_splits(17000, 4, 132), b = cuda::attention_decode_splits(100000, 4, 132);
  const int c = cuda::attention_decode_splits(100, 4, 132), d = cuda::attention_decode_splits(0, 4, 132);
  const int e = cuda::attention_decode_splits(1 << 24, 1, 1000);
  check_true("attention_decode_splits 17000 keys / 4 KV heads / 132 SMs = 67 (" + std::to_string(a) + ")", a == 67);
  check_true("attention_decode_splits 100000 keys = 132 (" + std::to_string(b) + ")", b == 132);
  check_true("attention_decode_splits 100 and 0 keys = 1 (" + std::to_string(c) + ", " + std::to_string(d) + ")",
             c == 1 && d == 1);
  check_true("attention_decode_splits capped at kMaxDecodeSplits (" + std::to_string(e) + ")",
             e == cuda::kMaxDecodeSplits);
}

VR_TEST(cuda_attention_decode_errors) {
  cuda::AttnArgs a;
  a.Hq = 28;
  a.Hkv = 4;
  a.D = 128;
  a.nseq = 1;
  int32_t* fake = reinterpret_cast<int32_t*>(16);
  a.cu_q = a.cu_k = fake;
  a.q_stride = a.o_stride = 28 * 128;
  a.k_stride = a.v_stride = 4 * 128;
  a.max_seqlen_q = 9;
  a.total_q = 9;
  a.max_seqlen_k = 100;
  bf16* p = reinterpret_cast<bf16*>(64);
  float* ws = reinterpret_cast<float*>(64);
  expect_throw("cuda attention_decode with 9 new rows",
               [&] { cuda::attention_decode(p, nullptr, p, p, p, a, 1, ws, size_t(1) << 30); });
  a.max_seqlen_q = a.total_q = 1;
  expect_throw("cuda attention_decode with 300 splits",
               [&] { cuda::attention_decode(p, nullptr, p, p, p, a, 300, ws, size_t(1) << 30); });
  expect_throw("cuda attention_decode with a workspace too small",
               [&] { cuda::attention_decode(p, nullptr, p, p, p, a, 4, ws, 100); });
  a.nseq = 2;
  expect_throw("cuda attention_decode with 2 segments",
               [&] { cuda::attention_decode(p, nullptr, p, p, p, a, 1, ws, size_t(1) << 30); });
  a.nseq = 1;
  a.Hq = 72;
  a.Hkv = 1;
  a.q_stride = a.o_stride = 72 * 128;
  expect_throw("cuda attention_decode with 72 query heads per KV head",
               [&] { cuda::attention_decode(p, nullptr, p, p, p, a, 1, ws, size_t(1) << 30); });
}

}  // namespace vr::test
