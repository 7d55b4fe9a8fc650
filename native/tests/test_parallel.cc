// Thread count and CPU detection: consistent feature flags, set_num_threads round trip, and results that do
// not depend on the thread count (work is split by rows / heads, never by a reduction across threads).
#include <cmath>
#include <string>

#include "core/dtype.h"
#include "core/parallel.h"
#include "ops/attention.h"
#include "ops/linear.h"
#include "tests/harness.h"

namespace vr::test {

VR_TEST(cpu_features_and_threads) {
  const CpuFeatures& f = cpu_features();
  check_true("cpu model name is known (" + f.model + ")", !f.model.empty());
  check_true("feature flags are consistent (amx/avx512_bf16 => avx512f => avx2)",
             (!f.avx512_bf16 || f.avx512f) && (!f.avx512f || f.avx2) && (!f.amx_bf16 || f.avx512f));
  const int before = num_threads();
  set_num_threads(1);
  check_true("set_num_threads(1) -> num_threads() == 1", num_threads() == 1);
  set_num_threads(before);
  check_true("thread count restored to " + std::to_string(before), num_threads() == before);
}

VR_TEST(results_independent_of_thread_count) {
  const int before = num_threads();
  Rng rng(11);
  // attention
  const int Hq = 28, Hkv = 4, D = 128, L = 130;
  const auto q = rng.vec(size_t(L) * Hq * D), k = rng.vec(size_t(L) * Hkv * D), v = rng.vec(size_t(L) * Hkv * D);
  const int32_t cu[2] = {0, L};
  AttnParams p;
  p.Hq = Hq;
  p.Hkv = Hkv;
  p.D = D;
  p.scale = 1.f / std::sqrt(float(D));
  p.causal = true;
  p.nseq = 1;
  p.cu_q = p.cu_k = cu;
  p.q_stride = p.o_stride = int64_t(Hq) * D;
  p.k_stride = p.v_stride = int64_t(Hkv) * D;
  std::vector<float> o1(q.size()), o2(q.size()), l1(size_t(Hq) * L), l2(size_t(Hq) * L);
  set_num_threads(1);
  attention_forward(o1.data(), l1.data(), q.data(), k.data(), v.data(), p);
  set_num_threads(std::max(2, before));
  attention_forward(o2.data(), l2.data(), q.data(), k.data(), v.data(), p);
  check_true("attention_forward bitwise equal with 1 and " + std::to_string(std::max(2, before)) + " threads",
             o1 == o2 && l1 == l2);
  // bf16 decode GEMV
  const int64_t N = 300, K = 257;
  const auto x = rng.vec(size_t(K)), wf = rng.vec(size_t(N * K));
  std::vector<uint16_t> w(wf.size());
  for (size_t i = 0; i < w.size(); i++) w[i] = f32_to_bf16(wf[i]);
  Linear lin;
  lin.dtype = DType::BF16;
  lin.N = N;
  lin.K = K;
  lin.w = w.data();
  std::vector<float> y1(static_cast<size_t>(N)), y2(static_cast<size_t>(N));
  set_num_threads(1);
  linear_forward(y1.data(), x.data(), lin, 1);
  set_num_threads(std::max(2, before));
  linear_forward(y2.data(), x.data(), lin, 1);
  check_true("linear bf16 M=1 bitwise equal with 1 and 2+ threads", y1 == y2);
  set_num_threads(before);
}

}  // namespace vr::test
