// The device lm_head + fused cross-entropy (cuda/model/gpu_train_loss) against the CPU FusedCrossEntropy
// (train/cross_entropy) over tiny-flat's lm_head [416, 64], through the emulator in CI. 37 rows of random
// post-norm-scale hidden states, every fourth ignored (-100), chunks of 5 rows (both sides) so the chunk loop is
// crossed; backward with the trainer's mean weight 1/count. Compared: the loss sum, dhidden (ignored rows must
// stay untouched) and the lm_head gradient. Reference / baseline / rule as test_train_llm.cc (CPU over an fp32 /
// a BF16 ParamStore; max|gpu - ref| <= 2 * max|base - ref| + 1e-3 * max|ref|).
#include <string>
#include <vector>

#include "cuda/model/gpu_train_llm.h"
#include "cuda/model/gpu_train_loss.h"
#include "cuda/model/gpu_train_params.h"
#include "cuda_tests/device_buffer.h"
#include "cuda_tests/train_checks.h"
#include "cuda_tests/model_fixture.h"
#include "model/llm_train.h"
#include "tests/harness.h"
#include "train/cross_entropy.h"
#include "train/param_store.h"

namespace vr::test {
namespace {

constexpr int64_t kT = 37, kChunk = 5;

struct Case {
  std::vector<float> hidden, dhidden0;
  std::vector<int32_t> targets;
};

Case make_case(int64_t D, int64_t V) {
  Rng rng(11);
  Case c;
  c.hidden = rng.vec(size_t(kT * D), -2, 2);
  c.dhidden0 = rng.vec(size_t(kT * D), -0.01, 0.01);  // a gradient already there (the latent losses' rows)
  for (int64_t t = 0; t < kT; t++) c.targets.push_back(t % 4 == 3 ? -100 : int32_t(rng.next() % uint64_t(V)));
  return c;
}

struct Result {
  double loss = 0;
  std::vector<float> dhidden, dW;
};

Result run_cpu(const ModelConfig& mc, const WeightStore& ws, DType compute, const Case& c) {
  ParamStore ps(compute);
  TrainLLM llm(mc.text, ps);
  ps.allocate();
  llm.load(ws);
  ps.refresh_shadows();
  ps.zero_grad();
  FusedCrossEntropy ce;
  ce.set_max_chunk_rows(kChunk);
  Result r;
  r.loss = ce.value(c.hidden.data(), c.targets.data(), kT, mc.text.hidden, llm.lm_head());
  r.dhidden = c.dhidden0;
  ce.backward(c.hidden.data(), 1.0f / float(ce.count()), llm.lm_head(), llm.lm_head_grad(), r.dhidden.data());
  r.dW.assign(llm.lm_head_grad(), llm.lm_head_grad() + mc.text.vocab * mc.text.hidden);
  return r;
}

Result run_gpu(const ModelConfig& mc, const WeightStore& ws, const Case& c, int64_t* count) {
  ParamStore ps(DType::F32);
  TrainLLM cpu(mc.text, ps);
  ps.allocate();
  cpu.load(ws);
  cuda::GpuTrainParams gp(ps, cuda::OptimizerPlacement::Gpu, cuda::GpuTrainLLM::param_layout(mc.text));
  gp.upload();
  cuda::GpuTrainLLM llm(mc.text, gp);
  cuda::GpuFusedCrossEntropy ce;
  ce.set_max_chunk_rows(kChunk);
  DeviceBuffer<float> hidden(c.hidden), dhidden(c.dhidden0);
  Result r;
  r.loss = ce.value(hidden.get(), c.targets.data(), kT, mc.text.hidden, llm.lm_head_bf16(), mc.text.vocab);
  *count = ce.count();
  ce.backward(hidden.get(), 1.0f / float(ce.count()), llm.lm_head_bf16(), llm.lm_head_grad(), dhidden.get());
  r.dhidden = dhidden.download();
  gp.download_grads();
  const Param& w = ps.get("lm_head.weight");
  r.dW.assign(w.g, w.g + w.numel);
  return r;
}


}  // namespace

VR_TEST(cuda_train_cross_entropy) {
  const ModelConfig mc = tiny_flat_config(DType::F32);
  const WeightStore ws(safetensors_records(tiny_flat_dir() + "/model.safetensors"));
  const Case c = make_case(mc.text.hidden, mc.text.vocab);
  const Result ref = run_cpu(mc, ws, DType::F32, c);
  const Result base = run_cpu(mc, ws, DType::BF16, c);
  int64_t n = 0;
  const Result gpu = run_gpu(mc, ws, c, &n);
  const std::string tag = "cuda lm_head + cross-entropy T=37 (" + std::to_string(n) + " targets, chunks of 5)";
  check_true(tag + " target rows counted as the CPU's", n == 28);
  check_tensor(tag + " loss sum", {float(gpu.loss)}, {float(base.loss)}, {float(ref.loss)}, 1e-5);
  check_tensor(tag + " dhidden", gpu.dhidden, base.dhidden, ref.dhidden);
  check_tensor(tag + " lm_head gradient", gpu.dW, base.dW, ref.dW);
  bool untouched = true;
  for (int64_t t = 3; t < kT; t += 4)
    for (int64_t d = 0; d < mc.text.hidden; d++)
      untouched = untouched && gpu.dhidden[size_t(t * mc.text.hidden + d)] == c.dhidden0[size_t(t * mc.text.hidden + d)];
  check_true(tag + " ignored rows keep their gradient bit for bit", untouched);

  cuda::GpuFusedCrossEntropy ce;
  const std::vector<int32_t> bad = {1, 416};
  expect_throw("cuda cross-entropy: a target outside the vocabulary",
               [&] { ce.value(nullptr, bad.data(), 2, mc.text.hidden, nullptr, mc.text.vocab); });
}

}  // namespace vr::test
