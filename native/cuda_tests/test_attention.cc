// CUDA flash attention (forward: out, lse; backward: dq, dk, dv accumulated) vs the CPU backend, by the
// flash-attention rule against the fp64 dense reference of native/tests/reference.h. Cases cover varlen
// segments, GQA, bottom-right causal masks (prefill, decode, rows that see no key), strided q (a slice of a
// fused qkv row), head dims 80 and 128 and a generic one (160, which needs > 48 KiB of shared memory).
#include <algorithm>
#include <cmath>
#include <string>

#include "cuda_tests/attention_case.h"
#include "cuda_tests/device_buffer.h"
#include "ops/attention.h"
#include "tests/harness.h"
#include "tests/reference.h"

namespace vr::test {
namespace {

// dense [T, W] <-> rows of stride `stride` (the padding columns hold junk that must not be read or written)
std::vector<float> widen(const std::vector<float>& dense, int64_t T, int64_t W, int64_t stride, float junk) {
  std::vector<float> r(size_t(T * stride), junk);
  for (int64_t t = 0; t < T; t++) std::copy_n(&dense[size_t(t * W)], W, &r[size_t(t * stride)]);
  return r;
}
std::vector<float> narrow(const std::vector<float>& wide, int64_t T, int64_t W, int64_t stride) {
  std::vector<float> r(size_t(T * W));
  for (int64_t t = 0; t < T; t++) std::copy_n(&wide[size_t(t * stride)], W, &r[size_t(t * W)]);
  return r;
}
bool padding_intact(const std::vector<float>& wide, int64_t T, int64_t W, int64_t stride, float junk) {
  for (int64_t t = 0; t < T; t++)
    for (int64_t c = W; c < stride; c++)
      if (wide[size_t(t * stride + c)] != junk) return false;
  return true;
}

// lse may hold -inf (rows that see no key): the -inf positions must agree, then finite values follow the rule.
void check_lse(const std::string& what, std::vector<float> got, std::vector<float> base, std::vector<double> ref) {
  bool same = true;
  for (size_t i = 0; i < ref.size(); i++) {
    const bool none = std::isinf(ref[i]);
    same &= std::isinf(got[i]) == none && std::isinf(base[i]) == none;
    if (none) got[i] = base[i] = 0.f, ref[i] = 0.0;
  }
  check_true(what + " -inf rows (no visible key) match", same);
  check_rule(what, got.data(), base.data(), ref.data(), ref.size(), 1e-6);
}

template <class S>
void attention_case(const AttnCase& c, uint64_t seed) {
  Rng rng(seed);
  const std::vector<int32_t> cu_q = offsets(c.lq), cu_k = offsets(c.lk);
  const int64_t Tq = cu_q.back(), Tk = cu_k.back();
  const int64_t WQ = int64_t(c.Hq) * c.D, WK = int64_t(c.Hkv) * c.D, QS = WQ + c.q_pad;
  const auto q = stored<S>(rng.vec(size_t(Tq * WQ), -1.5, 1.5)), k = stored<S>(rng.vec(size_t(Tk * WK), -1.5, 1.5));
  const auto v = stored<S>(rng.vec(size_t(Tk * WK))), dout = stored<S>(rng.vec(size_t(Tq * WQ)));
  const auto dq0 = stored<S>(rng.vec(size_t(Tq * WQ))), dk0 = stored<S>(rng.vec(size_t(Tk * WK)));
  const auto dv0 = stored<S>(rng.vec(size_t(Tk * WK)));
  const float scale = 1.0f / std::sqrt(float(c.D));
  const std::string tag = std::string("cuda attention ") + storage_name<S>() + " " + c.name;

  // fp64 reference (dense layout)
  ref::AttnShape sh{c.Hq, c.Hkv, c.D, double(scale), c.causal, cu_q, cu_k};
  std::vector<double> out64(static_cast<size_t>(Tq * WQ)), lse64(static_cast<size_t>(c.Hq * Tq));
  std::vector<double> dq64 = to_double(dq0), dk64 = to_double(dk0), dv64 = to_double(dv0);
  ref::attention<double>(out64, lse64, to_double(q), to_double(k), to_double(v), sh);
  ref::attention_backward<double>(dq64, dk64, dv64, to_double(dout), to_double(q), to_double(k), to_double(v), sh);

  // CPU backend (fp32), with the same q row stride
  AttnParams p;
  p.Hq = c.Hq;
  p.Hkv = c.Hkv;
  p.D = c.D;
  p.scale = scale;
  p.causal = c.causal;
  p.nseq = int(c.lq.size());
  p.cu_q = cu_q.data();
  p.cu_k = cu_k.data();
  p.q_stride = QS;
  p.k_stride = p.v_stride = WK;
  p.o_stride = WQ;
  const auto q_wide = widen(q, Tq, WQ, QS, 7.f), dq0_wide = widen(dq0, Tq, WQ, QS, 7.f);
  std::vector<float> out_cpu(static_cast<size_t>(Tq * WQ)), lse_cpu(static_cast<size_t>(c.Hq * Tq));
  std::vector<float> dq_cpu = dq0_wide, dk_cpu = dk0, dv_cpu = dv0;
  vr::attention_forward(out_cpu.data(), lse_cpu.data(), q_wide.data(), k.data(), v.data(), p);
  vr::attention_backward(dq_cpu.data(), dk_cpu.data(), dv_cpu.data(), dout.data(), out_cpu.data(), lse_cpu.data(),
                         q_wide.data(), k.data(), v.data(), p);
  out_cpu = stored<S>(out_cpu);
  dq_cpu = stored<S>(narrow(dq_cpu, Tq, WQ, QS));
  dk_cpu = stored<S>(dk_cpu);
  dv_cpu = stored<S>(dv_cpu);

  // CUDA kernels
  DeviceBuffer<int32_t> d_cuq(cu_q), d_cuk(cu_k);
  DeviceBuffer<S> d_q(to_storage<S>(q_wide)), d_k(to_storage<S>(k)), d_v(to_storage<S>(v));
  DeviceBuffer<S> d_out(static_cast<size_t>(Tq * WQ)), d_dout(to_storage<S>(dout));
  DeviceBuffer<S> d_dq(to_storage<S>(dq0_wide)), d_dk(to_storage<S>(dk0)), d_dv(to_storage<S>(dv0));
  DeviceBuffer<float> d_lse(static_cast<size_t>(c.Hq * Tq));
  cuda::AttnArgs a;
  a.Hq = c.Hq;
  a.Hkv = c.Hkv;
  a.D = c.D;
  a.scale = scale;
  a.causal = c.causal;
  a.nseq = p.nseq;
  a.cu_q = d_cuq.get();
  a.cu_k = d_cuk.get();
  a.max_seqlen_q = *std::max_element(c.lq.begin(), c.lq.end());
  a.max_seqlen_k = *std::max_element(c.lk.begin(), c.lk.end());
  a.total_q = Tq;
  a.q_stride = QS;
  a.k_stride = a.v_stride = WK;
  a.o_stride = WQ;
  // the scalar kernel (on a GPU, Auto would pick the tensor-core forward for bf16: test_attention_tc.cc)
  cuda::attention_forward(d_out.get(), d_lse.get(), d_q.get(), d_k.get(), d_v.get(), a, nullptr,
                          cuda::AttnKernelPath::Scalar);
  cuda::attention_backward(d_dq.get(), d_dk.get(), d_dv.get(), d_dout.get(), d_out.get(), d_lse.get(), d_q.get(),
                           d_k.get(), d_v.get(), a);
  const auto out = to_float(d_out.download()), lse = d_lse.download();
  const auto dq_wide = to_float(d_dq.download()), dk = to_float(d_dk.download()), dv = to_float(d_dv.download());
  const auto dq = narrow(dq_wide, Tq, WQ, QS);

  check_rule(tag + " out", out.data(), out_cpu.data(), out64.data(), out.size(), 1e-6);
  check_lse(tag + " lse", lse, lse_cpu, lse64);
  check_rule(tag + " dq", dq.data(), dq_cpu.data(), dq64.data(), dq.size(), 1e-6);
  check_rule(tag + " dk", dk.data(), dk_cpu.data(), dk64.data(), dk.size(), 1e-6);
  check_rule(tag + " dv", dv.data(), dv_cpu.data(), dv64.data(), dv.size(), 1e-6);
  if (c.q_pad) check_true(tag + " dq row padding untouched", padding_intact(dq_wide, Tq, WQ, QS, 7.f));
}

const AttnCase kCases[] = {
    {"D=128 GQA 4/2 causal prefill, segments 37,64,5", 4, 2, 128, true, {37, 64, 5}, {37, 64, 5}, 0},
    {"D=80 non-causal cross lengths q 20,7 k 33,50, strided q", 3, 3, 80, false, {20, 7}, {33, 50}, 2 * 80 + 16},
    {"D=128 causal decode + rows seeing no key, q 1,10 k 40,4", 2, 1, 128, true, {1, 10}, {40, 4}, 0},
    {"D=160 generic path, GQA 2/1 causal, q 18 k 26", 2, 1, 160, true, {18}, {26}, 0},
};

}  // namespace

VR_TEST(cuda_attention_f32) {
  uint64_t seed = 11;
  for (const AttnCase& c : kCases) attention_case<float>(c, seed++);
}

VR_TEST(cuda_attention_bf16) {
  attention_case<bf16>(kCases[0], 21);
  attention_case<bf16>(kCases[1], 22);
}

VR_TEST(cuda_attention_errors) {
  cuda::AttnArgs a;
  a.Hq = 3;
  a.Hkv = 2;
  a.D = 64;
  a.nseq = 1;
  expect_throw("cuda attention_forward Hq not a multiple of Hkv", [&] {
    cuda::attention_forward(static_cast<float*>(nullptr), nullptr, nullptr, nullptr, nullptr, a);
  });
  a.Hkv = 3;
  a.D = 512;
  expect_throw("cuda attention_forward D=512", [&] {
    cuda::attention_forward(static_cast<float*>(nullptr), nullptr, nullptr, nullptr, nullptr, a);
  });
}

}  // namespace vr::test
