// CUDA LayerNorm (forward, backward) vs the CPU backend, by the flash-attention rule against an fp64 reference.
// fp32 kernels: the baseline is the CPU backend itself. bf16 kernels: inputs are bf16 values and the baseline is
// the CPU backend on those values, rounded to bf16. Also: the parameter gradients are bit-identical across two
// runs (column owners, no atomics), and a null bias gives no bias.
#include <string>

#include "cuda_tests/device_buffer.h"
#include "ops/norm.h"
#include "tests/harness.h"
#include "tests/reference.h"

namespace vr::test {
namespace {

template <class S>
void layernorm_case(int64_t N, int64_t C, bool with_bias, uint64_t seed) {
  Rng rng(seed);
  const float eps = 1e-5f;
  const size_t NC = size_t(N * C), Nn = size_t(N);
  // a shifted input, so the mean matters
  const auto x = stored<S>(rng.vec(NC, -1.5, 2.5)), w = stored<S>(rng.vec(size_t(C), 0.5, 1.5));
  const auto b = with_bias ? stored<S>(rng.vec(size_t(C))) : std::vector<float>(size_t(C), 0.f);
  const auto dy = stored<S>(rng.vec(NC)), dx0 = stored<S>(rng.vec(NC));
  const auto dw0 = rng.vec(size_t(C)), db0 = rng.vec(size_t(C));
  const std::string tag = std::string("cuda layernorm ") + storage_name<S>() + " N=" + std::to_string(N) +
                          " C=" + std::to_string(C) + (with_bias ? "" : " no bias");

  std::vector<double> out64(NC), mean64(Nn), rstd64(Nn);
  std::vector<double> dx64 = to_double(dx0), dw64 = to_double(dw0), db64 = to_double(db0);
  ref::layernorm<double>(out64, mean64, rstd64, to_double(x), to_double(w), to_double(b), N, C, eps);
  ref::layernorm_backward<double>(dx64, dw64, db64, to_double(dy), to_double(x), to_double(w), N, C, eps);

  std::vector<float> out_cpu(NC), mean_cpu(Nn), rstd_cpu(Nn), dx_cpu = dx0, dw_cpu = dw0, db_cpu = db0;
  vr::layernorm_forward(out_cpu.data(), mean_cpu.data(), rstd_cpu.data(), x.data(), w.data(),
                        with_bias ? b.data() : nullptr, N, C, eps);
  vr::layernorm_backward(dx_cpu.data(), dw_cpu.data(), db_cpu.data(), dy.data(), x.data(), w.data(), mean_cpu.data(),
                         rstd_cpu.data(), N, C);
  out_cpu = stored<S>(out_cpu);
  dx_cpu = stored<S>(dx_cpu);

  DeviceBuffer<S> d_x(to_storage<S>(x)), d_w(to_storage<S>(w)), d_b(to_storage<S>(b)), d_out(NC);
  DeviceBuffer<S> d_dy(to_storage<S>(dy)), d_dx(to_storage<S>(dx0));
  DeviceBuffer<float> d_mean(Nn), d_rstd(Nn), d_dw(dw0), d_db(db0);
  cuda::layernorm_forward(d_out.get(), d_mean.get(), d_rstd.get(), d_x.get(), d_w.get(),
                          with_bias ? d_b.get() : nullptr, N, C, eps);
  cuda::layernorm_backward(d_dx.get(), d_dw.get(), d_db.get(), d_dy.get(), d_x.get(), d_w.get(), d_mean.get(),
                           d_rstd.get(), N, C);
  const auto out = to_float(d_out.download()), dx = to_float(d_dx.download());
  const auto mean = d_mean.download(), rstd = d_rstd.download(), dw = d_dw.download(), db = d_db.download();

  check_rule(tag + " out", out.data(), out_cpu.data(), out64.data(), NC, 1e-6);
  check_rule(tag + " mean", mean.data(), mean_cpu.data(), mean64.data(), mean.size(), 1e-6);
  check_rule(tag + " rstd", rstd.data(), rstd_cpu.data(), rstd64.data(), rstd.size(), 1e-6);
  check_rule(tag + " dinp", dx.data(), dx_cpu.data(), dx64.data(), NC, 1e-6);
  check_rule(tag + " dweight", dw.data(), dw_cpu.data(), dw64.data(), dw.size(), 1e-5);
  check_rule(tag + " dbias", db.data(), db_cpu.data(), db64.data(), db.size(), 1e-5);

  // Parameter gradients alone (dinp null), twice: bit-identical sums.
  DeviceBuffer<float> d_dw2(dw0), d_dw3(dw0);
  cuda::layernorm_backward(static_cast<S*>(nullptr), d_dw2.get(), nullptr, d_dy.get(), d_x.get(), d_w.get(),
                           d_mean.get(), d_rstd.get(), N, C);
  cuda::layernorm_backward(static_cast<S*>(nullptr), d_dw3.get(), nullptr, d_dy.get(), d_x.get(), d_w.get(),
                           d_mean.get(), d_rstd.get(), N, C);
  check_true(tag + " dweight is bit-identical run to run and equals the full backward's",
             d_dw2.download() == d_dw3.download() && d_dw2.download() == dw);
}

}  // namespace

VR_TEST(cuda_layernorm) {
  layernorm_case<float>(5, 96, true, 11);
  layernorm_case<float>(37, 1000, true, 12);  // C not a multiple of 32, several column blocks
  layernorm_case<float>(9, 448, false, 13);
  layernorm_case<bf16>(5, 96, true, 14);
  layernorm_case<bf16>(33, 640, true, 15);
}

VR_TEST(cuda_layernorm_errors) {
  float dummy = 0;
  bool threw = false;
  try {
    cuda::layernorm_forward(&dummy, nullptr, nullptr, &dummy, &dummy, nullptr, 4, 0, 1e-5f);
  } catch (const vr::Error& e) {
    threw = std::string(e.what()).find("bad shape") != std::string::npos;
  }
  check_true("cuda layernorm_forward C=0 throws a one-line vr::Error", threw);
  threw = false;
  try {
    cuda::layernorm_backward(&dummy, nullptr, nullptr, &dummy, &dummy, &dummy, nullptr, &dummy, 4, 8);
  } catch (const vr::Error& e) {
    threw = std::string(e.what()).find("mean") != std::string::npos;
  }
  check_true("cuda layernorm_backward without mean throws", threw);
}

}  // namespace vr::test
