// The CUDA decoder against transformers itself: golden case flat_plain_odd_rep105 (test/golden/README.md §4) on
// tiny-flat. Its stored vision features (the merger output transformers scattered into the <|image_pad|> rows)
// enter the GPU decoder with the case's input ids and M-RoPE positions; then greedy decoding on the device with the
// repetition penalty 1.05 (greedy_next_token's seen mask, seeded with the prompt's ids) until <|im_end|>.
// Checks, the golden README's suggested bf16 comparison:
//   prompt logits [L, V]: max|gpu - hf_fp32| <= 2 * max|hf_bf16 - hf_fp32|  (transformers in bf16 as the baseline)
//   step logits: the same rule against the CPU model with BF16 weights on the same inputs as the baseline
//   generated ids == transformers' (the case's smallest top-2 margin is 0.32).
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cuda/model/device_weights.h"
#include "cuda/model/gpu_kv_cache.h"
#include "cuda/model/gpu_language_model.h"
#include "cuda_tests/device_buffer.h"
#include "cuda_tests/model_fixture.h"
#include "model/kv_cache.h"
#include "model/language_model.h"
#include "tests/harness.h"

namespace vr::test {
namespace {

// Every integer inside the JSON value of `key` (nested arrays flattened, in order). Enough for the case files.
std::vector<int64_t> json_ints(const std::string& text, const std::string& key) {
  const size_t k = text.find("\"" + key + "\"");
  VR_CHECK(k != std::string::npos, "golden case: no key ", key);
  size_t i = text.find(':', k) + 1;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) i++;
  std::vector<int64_t> out;
  int depth = 0;
  do {
    const char c = text[i];
    if (c == '[') depth++;
    else if (c == ']') depth--;
    else if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) {
      size_t used = 0;
      out.push_back(std::stoll(text.substr(i, 24), &used));
      i += used;
      continue;
    }
    i++;
  } while (depth > 0 && i < text.size());
  return out;
}

std::vector<float> tensor(const WeightStore& ws, const std::string& name, std::vector<int64_t> shape) {
  const TensorView& v = ws.get(name, shape);
  const float* p = static_cast<const float*>(v.data);
  return std::vector<float>(p, p + v.numel());
}

}  // namespace

VR_TEST(cuda_model_golden_decode) {
  const std::string cases = tiny_flat_dir() + "/../../cases/";
  const std::string name = "flat_plain_odd_rep105";
  std::ifstream jf(cases + name + ".json");
  VR_CHECK(jf.good(), "cannot read golden case ", cases + name + ".json");
  std::stringstream js;
  js << jf.rdbuf();
  const std::string json = js.str();
  const auto ids64 = json_ints(json, "input_ids"), pos = json_ints(json, "position_ids");
  const auto gen = json_ints(json, "generated_ids"), delta = json_ints(json, "rope_delta");
  const std::vector<int32_t> ids(ids64.begin(), ids64.end());
  const int64_t L = int64_t(ids.size()), n = int64_t(gen.size());
  const ModelConfig mc = tiny_flat_config(DType::BF16);
  const int64_t D = mc.text.hidden, V = mc.text.vocab;
  VR_CHECK(int64_t(pos.size()) == 3 * L && delta.size() == 1, "golden case ", name, ": bad positions");

  const WeightStore golden(safetensors_records(cases + name + ".safetensors"));
  const int64_t Nt = json_ints(json, "num_image_tokens")[0];
  const auto feats = tensor(golden, "vision_features", {Nt, D});
  const auto hf_logits = tensor(golden, "logits", {L, V}), hf_bf16 = tensor(golden, "logits_bf16_ref", {L, V});
  const auto hf_steps = tensor(golden, "step_logits", {n, V});

  WeightStore ws(safetensors_records(tiny_flat_dir() + "/model.safetensors"));
  const cuda::DeviceWeights dw(mc, ws, cuda::WeightParts::LanguageOnly);
  cuda::GpuLanguageModel lm(dw);
  cuda::GpuKVCache cache = lm.new_cache(L + n);
  DeviceBuffer<int32_t> d_ids(ids), rows(static_cast<size_t>(Nt)), count(1), next(1);
  DeviceBuffer<float> x(static_cast<size_t>(L * D)), d_feats(feats), logits(static_cast<size_t>(L * V));
  DeviceBuffer<float> xin(static_cast<size_t>(D));
  std::vector<uint8_t> seen(static_cast<size_t>(V), 0);
  for (int32_t t : ids) seen[size_t(t)] = 1;
  DeviceBuffer<uint8_t> d_seen(seen);
  lm.embed(x.get(), d_ids.get(), L);
  cuda::token_rows(rows.get(), count.get(), d_ids.get(), L, mc.image_token_id, Nt);
  cuda::scatter_rows(x.get(), d_feats.get(), rows.get(), Nt, D, L);
  lm.forward(x.get(), x.get(), L, pos.data(), L, cache);
  lm.logits(logits.get(), x.get(), L);
  const std::vector<float> prompt_logits = logits.download();

  // The CPU model with BF16 weights on the same inputs: the baseline of the decode steps.
  const LanguageModel cpu(mc.text, ws, DType::BF16);
  KVCache cpu_cache = cpu.new_cache();
  std::vector<float> cx(static_cast<size_t>(L * D)), ch(static_cast<size_t>(L * D)), cl(static_cast<size_t>(V));
  cpu.embed(cx.data(), ids.data(), L);
  for (int64_t t = 0, j = 0; t < L; t++)
    if (ids[size_t(t)] == mc.image_token_id) std::copy_n(&feats[size_t(j++ * D)], D, &cx[size_t(t * D)]);
  cpu.forward(ch.data(), cx.data(), L, pos.data(), L, cpu_cache);
  std::vector<float> cpu_last(ch.end() - D, ch.end());

  std::vector<float> gpu_steps, cpu_steps;
  std::vector<int64_t> got;
  const float* hid = x.get() + (L - 1) * D;
  for (int64_t k = 0; k < n; k++) {
    lm.logits(logits.get(), hid, 1);
    cuda::greedy_next_token(next.get(), d_seen.get(), logits.get(), 1, V, 1.05f, /*mark_seen=*/true);
    const std::vector<float> lg = logits.download();
    gpu_steps.insert(gpu_steps.end(), lg.begin(), lg.begin() + V);
    got.push_back(next.download()[0]);
    cpu.logits(cl.data(), cpu_last.data(), 1);
    cpu_steps.insert(cpu_steps.end(), cl.begin(), cl.end());
    if (k + 1 == n) break;
    const int64_t q = L + k + delta[0];
    const int64_t p3[3] = {q, q, q};
    lm.embed(xin.get(), next.get(), 1, /*check_ids=*/false);
    lm.forward(xin.get(), xin.get(), 1, p3, 1, cache);
    hid = xin.get();
    const int32_t fed = int32_t(gen[size_t(k)]);  // the CPU baseline is fed transformers' ids
    cpu.embed(cx.data(), &fed, 1);
    cpu.forward(cpu_last.data(), cx.data(), 1, p3, 1, cpu_cache);
  }

  const std::string tag = "cuda model vs transformers, golden " + name + " (L=" + std::to_string(L) + ")";
  const std::vector<double> ref_p = to_double(hf_logits), ref_s = to_double(hf_steps);
  check_rule(tag + " prompt logits [L, V], baseline transformers bf16", prompt_logits.data(), hf_bf16.data(),
             ref_p.data(), ref_p.size(), 0);
  check_rule(tag + " logits of the " + std::to_string(n) + " decode steps, baseline CPU BF16", gpu_steps.data(),
             cpu_steps.data(), ref_s.data(), ref_s.size(), 1e-3);
  std::string g, w;
  for (size_t i = 0; i < got.size(); i++) {
    g += " " + std::to_string(got[i]);
    w += " " + std::to_string(gen[i]);
  }
  check_true(tag + " greedy ids with repetition penalty 1.05 equal transformers':" + g + " (want" + w + ")",
             got == gen);
}

}  // namespace vr::test
