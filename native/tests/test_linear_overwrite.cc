// linear_backward's GradOverwrite (outputs written with = instead of +=): on outputs full of NaN it must give
// exactly what accumulating into zeros gives, on every GEMM path, F32 and BF16 weights, with and without bias.
#include <cmath>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "cpu/cpu_ops.h"
#include "ops/linear.h"
#include "tests/harness.h"

namespace vr::test {

VR_TEST(linear_backward_overwrite) {
  struct Shape {
    int64_t M, N, K;
  };
  const Shape shapes[] = {{1, 33, 65}, {20, 48, 37}, {64, 96, 130}};
  const cpu::GemmPath paths[] = {cpu::GemmPath::Auto, cpu::GemmPath::Builtin};
  uint64_t seed = 300;
  for (cpu::GemmPath path : paths) {
    cpu::set_gemm_path(path);
    for (const Shape& s : shapes)
      for (int bf16 = 0; bf16 < 2; bf16++)
        for (int ow = 1; ow < 4; ow++) {  // bit 0: dinp, bit 1: dweight (+ dbias)
          Rng rng(seed++);
          const auto x = rng.vec(size_t(s.M * s.K)), dy = rng.vec(size_t(s.M * s.N));
          const auto wf = rng.vec(size_t(s.N * s.K));
          std::vector<uint16_t> w16(wf.size());
          for (size_t i = 0; i < wf.size(); i++) w16[i] = f32_to_bf16(wf[i]);
          Linear L;
          L.dtype = bf16 ? DType::BF16 : DType::F32;
          L.N = s.N;
          L.K = s.K;
          L.w = bf16 ? static_cast<const void*>(w16.data()) : static_cast<const void*>(wf.data());
          std::vector<float> dx0(size_t(s.M * s.K), 0.f), dw0(size_t(s.N * s.K), 0.f), db0(size_t(s.N), 0.f);
          linear_backward(dx0.data(), dw0.data(), db0.data(), dy.data(), x.data(), L, s.M);
          GradOverwrite o;
          o.dinp = ow & 1;
          o.dweight = (ow & 2) != 0;
          std::vector<float> dx(dx0.size(), o.dinp ? NAN : 0.f), dw(dw0.size(), o.dweight ? NAN : 0.f),
              db(db0.size(), o.dweight ? NAN : 0.f);
          linear_backward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), L, s.M, o);
          const std::string name = std::string("linear_backward overwrite ") + (o.dinp ? "dinp " : "") +
                                   (o.dweight ? "dweight+dbias " : "") + (bf16 ? "bf16 " : "f32 ") +
                                   (path == cpu::GemmPath::Builtin ? "builtin " : "auto ") + std::to_string(s.M) +
                                   "x" + std::to_string(s.N) + "x" + std::to_string(s.K);
          check_true(name + " == accumulate into zeros", dx == dx0 && dw == dw0 && db == db0);
        }
  }
  cpu::set_gemm_path(cpu::GemmPath::Auto);
}

}  // namespace vr::test
