// CUDA RoPE and SwiGLU (forward, backward) vs the CPU backend, by the flash-attention rule against fp64.
// bf16 kernels: bf16 inputs, baseline = CPU backend (fp32 maths) on the same values rounded to bf16.
#include <string>

#include "cuda_tests/device_buffer.h"
#include "ops/activation.h"
#include "ops/rope.h"
#include "tests/harness.h"
#include "tests/reference.h"

namespace vr::test {
namespace {

// Tables as the model builds them: two equal halves, angles t * inv_freq.
void rope_tables(std::vector<float>& cs, std::vector<float>& sn, int64_t T, int D) {
  cs.resize(size_t(T * D));
  sn.resize(size_t(T * D));
  for (int64_t t = 0; t < T; t++)
    for (int i = 0; i < D / 2; i++) {
      const double ang = double(t * 3 + 1) * std::pow(10000.0, -2.0 * i / D);
      for (int half = 0; half < 2; half++) {
        cs[size_t(t * D + i + half * D / 2)] = float(std::cos(ang));
        sn[size_t(t * D + i + half * D / 2)] = float(std::sin(ang));
      }
    }
}

template <class S>
void rope_case(int64_t T, int H, int D, int64_t stride, uint64_t seed) {
  Rng rng(seed);
  const size_t n = size_t(T * stride);
  const auto x = stored<S>(rng.vec(n, -2, 2));
  std::vector<float> cs, sn;
  rope_tables(cs, sn, T, D);
  const std::string tag = std::string("cuda rope ") + storage_name<S>() + " T=" + std::to_string(T) +
                          " H=" + std::to_string(H) + " D=" + std::to_string(D) + " stride=" + std::to_string(stride);
  for (bool backward : {false, true}) {
    std::vector<double> ref64 = to_double(x);
    ref::rope<double>(ref64, to_double(cs), to_double(sn), T, H, D, stride, backward);
    std::vector<float> cpu = x;
    if (backward)
      vr::rope_backward(cpu.data(), cs.data(), sn.data(), T, H, D, stride);
    else
      vr::rope_forward(cpu.data(), cs.data(), sn.data(), T, H, D, stride);
    cpu = stored<S>(cpu);
    DeviceBuffer<S> d_x(to_storage<S>(x));
    DeviceBuffer<float> d_cs(cs), d_sn(sn);
    if (backward)
      cuda::rope_backward(d_x.get(), d_cs.get(), d_sn.get(), T, H, D, stride);
    else
      cuda::rope_forward(d_x.get(), d_cs.get(), d_sn.get(), T, H, D, stride);
    const auto got = to_float(d_x.download());
    check_rule(tag + (backward ? " backward" : " forward"), got.data(), cpu.data(), ref64.data(), n, 1e-6);
  }
}

template <class S>
void swiglu_case(int64_t n, uint64_t seed) {
  Rng rng(seed);
  const auto gate = stored<S>(rng.vec(size_t(n), -6, 6)), up = stored<S>(rng.vec(size_t(n), -2, 2));
  const auto dy = stored<S>(rng.vec(static_cast<size_t>(n)));
  const std::string tag = std::string("cuda swiglu ") + storage_name<S>() + " n=" + std::to_string(n);
  std::vector<double> out64(static_cast<size_t>(n)), dg64(static_cast<size_t>(n)), du64(static_cast<size_t>(n));
  for (size_t i = 0; i < size_t(n); i++) {
    out64[i] = ref::silu<double>(gate[i]) * double(up[i]);
    ref::swiglu_grad<double>(gate[i], up[i], dy[i], &dg64[i], &du64[i]);
  }
  std::vector<float> out_cpu(static_cast<size_t>(n)), dg_cpu(static_cast<size_t>(n)), du_cpu(static_cast<size_t>(n));
  vr::swiglu_forward(out_cpu.data(), gate.data(), up.data(), n);
  vr::swiglu_backward(dg_cpu.data(), du_cpu.data(), dy.data(), gate.data(), up.data(), n);
  out_cpu = stored<S>(out_cpu);
  dg_cpu = stored<S>(dg_cpu);
  du_cpu = stored<S>(du_cpu);

  DeviceBuffer<S> d_g(to_storage<S>(gate)), d_u(to_storage<S>(up)), d_out(static_cast<size_t>(n)), d_dy(to_storage<S>(dy));
  DeviceBuffer<S> d_dg(static_cast<size_t>(n)), d_du(static_cast<size_t>(n));
  cuda::swiglu_forward(d_out.get(), d_g.get(), d_u.get(), n);
  cuda::swiglu_backward(d_dg.get(), d_du.get(), d_dy.get(), d_g.get(), d_u.get(), n);
  const auto out = to_float(d_out.download()), dg = to_float(d_dg.download()), du = to_float(d_du.download());
  check_rule(tag + " out", out.data(), out_cpu.data(), out64.data(), out.size(), 1e-6);
  check_rule(tag + " dgate", dg.data(), dg_cpu.data(), dg64.data(), dg.size(), 1e-6);
  check_rule(tag + " dup", du.data(), du_cpu.data(), du64.data(), du.size(), 1e-6);

  // dgate written over dout (the CPU contract allows the alias)
  cuda::swiglu_backward(d_dy.get(), static_cast<S*>(nullptr), d_dy.get(), d_g.get(), d_u.get(), n);
  const auto dg_alias = to_float(d_dy.download());
  check_true(tag + " dgate written in place over dout equals the separate result",
             max_abs_diff(dg_alias.data(), dg.data(), dg.size()) == 0);
}

}  // namespace

VR_TEST(cuda_rope) {
  rope_case<float>(13, 3, 64, 3 * 64, 1);
  rope_case<float>(9, 2, 80, 2 * 80 + 48, 2);  // a slice of a wider (fused qkv) row
  rope_case<bf16>(13, 3, 128, 3 * 128, 3);
}

VR_TEST(cuda_swiglu) {
  swiglu_case<float>(5000, 4);
  swiglu_case<bf16>(3001, 5);
}

}  // namespace vr::test
