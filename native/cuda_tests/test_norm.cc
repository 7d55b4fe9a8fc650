// CUDA RMSNorm (forward, backward) vs the CPU backend, by the flash-attention rule against an fp64 reference.
// fp32 kernels: the baseline is the CPU backend itself. bf16 kernels: inputs are bf16 values and the baseline
// is the CPU backend (fp32 maths) on those values, rounded to bf16 - the same-precision naive result.
#include <string>

#include "cuda_tests/device_buffer.h"
#include "ops/norm.h"
#include "tests/harness.h"
#include "tests/reference.h"

namespace vr::test {
namespace {

template <class S>
void rmsnorm_case(int64_t N, int64_t C, uint64_t seed) {
  Rng rng(seed);
  const float eps = 1e-6f;
  const auto x = stored<S>(rng.vec(size_t(N * C), -2, 2)), w = stored<S>(rng.vec(size_t(C), 0.5, 1.5));
  const auto dy = stored<S>(rng.vec(static_cast<size_t>(N * C))), dx0 = stored<S>(rng.vec(static_cast<size_t>(N * C)));
  const auto dw0 = rng.vec(size_t(C));
  const std::string tag = std::string("cuda rmsnorm ") + storage_name<S>() + " N=" + std::to_string(N) +
                          " C=" + std::to_string(C);

  // fp64 reference
  std::vector<double> out64(static_cast<size_t>(N * C)), rstd64(static_cast<size_t>(N)), dx64 = to_double(dx0), dw64 = to_double(dw0);
  ref::rmsnorm<double>(out64, rstd64, to_double(x), to_double(w), N, C, eps);
  ref::rmsnorm_backward<double>(dx64, dw64, to_double(dy), to_double(x), to_double(w), N, C, eps);

  // CPU backend (fp32), then stored as S
  std::vector<float> out_cpu(static_cast<size_t>(N * C)), rstd_cpu(static_cast<size_t>(N)), dx_cpu = dx0, dw_cpu = dw0;
  vr::rmsnorm_forward(out_cpu.data(), rstd_cpu.data(), x.data(), w.data(), N, C, eps);
  vr::rmsnorm_backward(dx_cpu.data(), dw_cpu.data(), dy.data(), x.data(), w.data(), rstd_cpu.data(), N, C);
  out_cpu = stored<S>(out_cpu);
  dx_cpu = stored<S>(dx_cpu);

  // CUDA kernels (the backward uses the kernel's own rstd)
  DeviceBuffer<S> d_x(to_storage<S>(x)), d_w(to_storage<S>(w)), d_out(static_cast<size_t>(N * C)), d_dy(to_storage<S>(dy));
  DeviceBuffer<S> d_dx(to_storage<S>(dx0));
  DeviceBuffer<float> d_rstd(static_cast<size_t>(N)), d_dw(dw0);
  cuda::rmsnorm_forward(d_out.get(), d_rstd.get(), d_x.get(), d_w.get(), N, C, eps);
  cuda::rmsnorm_backward(d_dx.get(), d_dw.get(), d_dy.get(), d_x.get(), d_w.get(), d_rstd.get(), N, C);
  const auto out = to_float(d_out.download()), dx = to_float(d_dx.download());
  const auto rstd = d_rstd.download(), dw = d_dw.download();

  check_rule(tag + " out", out.data(), out_cpu.data(), out64.data(), out.size(), 1e-6);
  check_rule(tag + " rstd", rstd.data(), rstd_cpu.data(), rstd64.data(), rstd.size(), 1e-6);
  check_rule(tag + " dinp", dx.data(), dx_cpu.data(), dx64.data(), dx.size(), 1e-6);
  check_rule(tag + " dweight", dw.data(), dw_cpu.data(), dw64.data(), dw.size(), 1e-5);
}

}  // namespace

VR_TEST(cuda_rmsnorm) {
  rmsnorm_case<float>(7, 96, 1);
  rmsnorm_case<float>(300, 1000, 2);  // more rows than backward blocks: grid-stride rows, C not a multiple of 32
  rmsnorm_case<bf16>(7, 96, 3);
  rmsnorm_case<bf16>(33, 640, 4);
  // Scale audit: the backward's shared memory (C floats + the 128-byte static scratch) must stay within the 48 KiB a
  // block gets without an opt-in; the emulator does not count static shared memory, so the limit is checked here.
  rmsnorm_case<float>(2, 12256, 5);
  {
    DeviceBuffer<float> x(12257), w(12257), dy(12257), dx(12257), dw(12257), rstd(1);
    expect_throw("cuda rmsnorm_backward C=12257 (48 KiB of shared memory)", [&] {
      cuda::rmsnorm_backward(dx.get(), dw.get(), dy.get(), x.get(), w.get(), rstd.get(), 1, 12257);
    });
  }
}

}  // namespace vr::test
