// The Hopper wgmma building blocks (cuda/kernels/wgmma.cuh) through the one-warpgroup probe GEMM
// (wgmma_probe.cu): d[64][n] = (accumulate_c ? c : 0) + a[64][k] b[k][n] against a naive fp64 product of the same
// bf16 inputs, for A in registers (RS) and in shared memory (SS), B K-major and MN-major (the transpose bit),
// n = 32, 64, 128, one and three k-steps accumulated in one commit group, scale-d = 0 (junk accumulators ignored)
// and 1 (c added). On the emulator this checks the model against the PTX ISA's layouts as we read them; in the GPU
// test binary (vreflect_cuda_gpu_tests on an H100 with an sm_90a image) the same cases check that reading against
// the hardware - the first GPU session must see them pass before trusting the wgmma attention path.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cuda_tests/device_buffer.h"
#include "tests/harness.h"

namespace vr::test {
namespace {

// Max |d - reference| over the case, the reference in fp64 from the bf16-rounded inputs.
double probe_error(int n, int k, bool rs, bool mn, bool acc, uint64_t seed) {
  Rng rng(seed);
  const std::vector<float> a = stored<bf16>(rng.vec(size_t(64 * k))), b = stored<bf16>(rng.vec(size_t(k * n)));
  const std::vector<float> c = rng.vec(size_t(64 * n), -4, 4);
  DeviceBuffer<bf16> da(to_bf16(a)), db(to_bf16(b));
  DeviceBuffer<float> dc(c), dd(std::vector<float>(size_t(64 * n), -777.f));
  cuda::wgmma_probe_gemm(dd.get(), da.get(), db.get(), dc.get(), n, k, rs, mn, acc);
  const std::vector<float> d = dd.download();
  double err = 0;
  for (int i = 0; i < 64; i++)
    for (int j = 0; j < n; j++) {
      double ref = acc ? double(c[size_t(i * n + j)]) : 0.0;
      for (int kk = 0; kk < k; kk++) ref += double(a[size_t(i * k + kk)]) * double(b[size_t(kk * n + j)]);
      err = std::fmax(err, std::fabs(double(d[size_t(i * n + j)]) - ref));
      if (std::isnan(d[size_t(i * n + j)])) err = INFINITY;
    }
  return err;
}

}  // namespace

VR_TEST(cuda_wgmma_probe_gemm) {
  if (!cuda::wgmma_image_available()) {
    std::printf("  (skipped: this device / build has no sm_90a wgmma code)\n");
    return;
  }
  uint64_t seed = 1;
  for (int n : {32, 64, 128})
    for (int k : {16, 48})
      for (int rs = 0; rs < 2; rs++)
        for (int mn = 0; mn < 2; mn++)
          for (int acc = 0; acc < 2; acc++) {
            const double err = probe_error(n, k, rs, mn, acc, seed++);
            // fp32 sums of at most 48 exact products of values in [-1, 1], plus c in [-4, 4]: far below 1e-4;
            // a misread layout is off by O(1).
            check_true("wgmma m64n" + std::to_string(n) + "k16 x " + std::to_string(k / 16) + " k-steps, A " +
                           (rs ? "registers" : "smem") + ", B " + (mn ? "MN-major (transposed)" : "K-major") +
                           ", scale-d " + (acc ? "1 over c" : "0 over junk") + ": max err " + std::to_string(err),
                       err <= 1e-4);
          }
}

VR_TEST(cuda_wgmma_probe_refuses_bad_shapes) {
  DeviceBuffer<float> d(size_t(64 * 64));
  DeviceBuffer<bf16> a(size_t(64 * 16)), b(size_t(16 * 64));
  expect_throw("wgmma_probe_gemm with N=48", [&] {
    cuda::wgmma_probe_gemm(d.get(), a.get(), b.get(), nullptr, 48, 16, false, false, false);
  });
  expect_throw("wgmma_probe_gemm with K=24", [&] {
    cuda::wgmma_probe_gemm(d.get(), a.get(), b.get(), nullptr, 64, 24, false, false, false);
  });
}

}  // namespace vr::test
