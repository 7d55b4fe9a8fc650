// One attention case for the tensor-core / wgmma kernel tests (test_attention_tc.cc,
// test_attention_wgmma_backward.cc): forward and backward on the device by the flash-attention rule against the
// fp64 dense reference (native/tests/reference.h), the CPU backend in fp32 on the same bf16 inputs, rounded to bf16,
// as the same-precision baseline: max|gpu - fp64| <= 2 * max|cpu - fp64| + floor for out, lse (whose -inf rows must
// agree), dq, dk, dv (accumulated into nonzero buffers; the backward runs on the kernel's own out / lse, as
// training does; q / dq rows may be slices of wider rows whose padding must survive).
#pragma once
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuda/kernels/cuda_kernels.h"
#include "cuda_tests/device_buffer.h"
#include "ops/attention.h"
#include "tests/harness.h"
#include "tests/reference.h"

namespace vr::test {

// One attention problem (also the scalar kernel tests' cases, test_attention.cc).
struct AttnCase {
  const char* name;
  int Hq, Hkv, D;
  bool causal;
  std::vector<int32_t> lq, lk;  // segment lengths
  int q_pad;                    // extra elements per q row (q is a slice of a wider row)
};

inline std::vector<int32_t> offsets(const std::vector<int32_t>& lens) {
  std::vector<int32_t> cu{0};
  for (int32_t l : lens) cu.push_back(cu.back() + l);
  return cu;
}

// Which gradients the backward is asked for (the others passed as null must stay untouched).
enum class Grads { All, DqOnly, DkDvOnly };

// fwd / bwd: the paths of the forward and the backward (TensorCore: mma.sync; Wgmma: the Hopper kernels, the
// backward through attention_backward's dispatch, so VREFLECT_ATTENTION_TILE_WGMMA_BWD applies).
inline void tc_case(const AttnCase& c, uint64_t seed, const std::string& variant = "",
                    cuda::AttnKernelPath fwd = cuda::AttnKernelPath::TensorCore,
                    cuda::AttnKernelPath bwd = cuda::AttnKernelPath::TensorCore, Grads grads = Grads::All) {
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
  auto name = [](cuda::AttnKernelPath p) { return p == cuda::AttnKernelPath::Wgmma ? "wgmma" : "tc"; };
  const std::string tag = (fwd == cuda::AttnKernelPath::TensorCore && bwd == cuda::AttnKernelPath::TensorCore
                               ? std::string("cuda attention tensor-core bf16 ")
                               : std::string("cuda attention ") + name(fwd) + " fwd + " + name(bwd) + " bwd bf16 ") +
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
  const bool want_dq = grads != Grads::DkDvOnly, want_dkdv = grads != Grads::DqOnly;
  cuda::attention_backward(want_dq ? d_dq.get() : nullptr, want_dkdv ? d_dk.get() : nullptr,
                           want_dkdv ? d_dv.get() : nullptr, d_dout.get(), d_out.get(), d_lse.get(), d_q.get(),
                           d_k.get(), d_v.get(), a, nullptr, bwd);
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

}  // namespace vr::test
