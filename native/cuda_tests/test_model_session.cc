// The CUDA inference session (cuda/model/gpu_session) against the CPU one (model/qwen_vl's Session) on the tiny
// golden checkpoint: one image + text prompt ending in <|lvr_start|>, so generation starts in latent mode (and
// emits <|lvr_start|> once more: a second latent phase), with the repetition penalty and the attention capture on. Both sessions run the same decoding rules (model/decode_rules),
// so everything discrete must be identical - ids, which forwards were fed a hidden state, latent steps, stop
// reason, cache length - and the numbers obey the kernels' rule against the CPU in fp32 (reference) with the CPU
// with BF16 weights as the same-precision baseline:
//   max|gpu - cpu_fp32| <= 2 * max|cpu_bf16 - cpu_fp32| + floor
// for the prompt's last logits, every step's logits and every latent step's attention map.
// Also: the KV cache moved to a larger one mid-decode (GpuKVCache::grown, what a session does when several latent
// phases outrun its capacity) decodes bit-identically to one that was large from the start.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "cuda/model/device_weights.h"
#include "cuda/model/gpu_kv_cache.h"
#include "cuda/model/gpu_language_model.h"
#include "cuda/model/gpu_session.h"
#include "cuda_tests/device_buffer.h"
#include "cuda_tests/model_fixture.h"
#include "cuda_tests/scoped_env.h"
#include "cuda_tests/session_case.h"
#include "model/qwen_vl.h"
#include "tests/harness.h"

namespace vr::test {
namespace {

PrefillInput make_input(const ModelConfig& mc) {
  PrefillInput in = session_case_input(mc);
  in.all_logits = true;  // every prompt row's logits: the rule's baseline error is taken over all of them
  return in;
}

struct Run {
  PrefillOutput pre;
  GenerateResult gen;
  int64_t cache_len = 0;
};

Run run_cpu(DType compute, const std::vector<TensorRecord>& recs, const PrefillInput& in, const GenerateOptions& o) {
  auto m = std::make_shared<const QwenVLModel>(tiny_flat_config(compute), recs);
  Session s(m);
  Run r;
  r.pre = s.prefill(in);
  r.gen = s.generate(o);
  r.cache_len = s.cache_len();
  return r;
}

std::vector<float> flat(const std::vector<std::vector<float>>& maps) {
  std::vector<float> v;
  for (const auto& m : maps) v.insert(v.end(), m.begin(), m.end());
  return v;
}

std::string ids_text(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t i : ids) s += " " + std::to_string(i);
  return s;
}

}  // namespace

VR_TEST(cuda_model_session_vs_cpu) {
  const auto recs = safetensors_records(tiny_flat_dir() + "/model.safetensors");
  const ModelConfig mc = tiny_flat_config(DType::BF16);
  const PrefillInput in = make_input(mc);
  const GenerateOptions o = session_case_options();
  const Run ref = run_cpu(DType::F32, recs, in, o), base = run_cpu(DType::BF16, recs, in, o);

  auto gm = std::make_shared<cuda::GpuQwenVL>(mc, recs);
  cuda::GpuSession gs(gm);
  Run gpu;
  gpu.pre = gs.prefill(in);
  gpu.gen = gs.generate(o);
  gpu.cache_len = gs.cache_len();

  const std::string tag = "cuda session tiny-flat L=" + std::to_string(in.ids.size()) + " (prompt ends in <|lvr_start|>)";
  check_true(tag + " positions and rope_delta equal the CPU's",
             gpu.pre.positions == ref.pre.positions && gpu.pre.rope_delta == ref.pre.rope_delta);
  const auto ref_pl = to_double(ref.pre.logits);
  check_rule(tag + " prefill logits [L, V]", gpu.pre.logits.data(), base.pre.logits.data(), ref_pl.data(),
             ref_pl.size(), 1e-3);
  check_true(tag + " generated ids equal the CPU's:" + ids_text(gpu.gen.ids) + " (CPU fp32" + ids_text(ref.gen.ids) + ")",
             gpu.gen.ids == ref.gen.ids);
  check_true(tag + " the same forwards were fed a hidden state", gpu.gen.latent_input == ref.gen.latent_input);
  check_true(tag + " latent steps " + std::to_string(gpu.gen.latent_steps_run) + " = CPU's, two phases of 4",
             gpu.gen.latent_steps_run == ref.gen.latent_steps_run && gpu.gen.latent_steps_run == 2 * o.latent_steps);
  check_true(tag + " stop reason '" + gpu.gen.stop_reason + "' = CPU's", gpu.gen.stop_reason == ref.gen.stop_reason);
  check_true(tag + " KV cache length " + std::to_string(gpu.cache_len) + " = CPU's", gpu.cache_len == ref.cache_len);
  if (gpu.gen.ids == ref.gen.ids) {  // the same inputs at every step: the numbers are comparable
    const auto ref_sl = to_double(ref.gen.step_logits);
    check_rule(tag + " logits of all " + std::to_string(gpu.gen.ids.size()) + " steps", gpu.gen.step_logits.data(),
               base.gen.step_logits.data(), ref_sl.data(), ref_sl.size(), 1e-3);
    check_true(tag + " one attention map per latent step (" + std::to_string(gpu.gen.attention.size()) + ")",
               gpu.gen.attention.size() == ref.gen.attention.size() && size_t(gpu.gen.latent_steps_run) == gpu.gen.attention.size());
    const std::vector<float> ga = flat(gpu.gen.attention), ba = flat(base.gen.attention), ra = flat(ref.gen.attention);
    const auto ref_a = to_double(ra);
    if (ga.size() == ra.size() && ba.size() == ra.size())
      check_rule(tag + " latent steps' attention over the 24 image tokens", ga.data(), ba.data(), ref_a.data(),
                 ref_a.size(), 1e-5);
  }

  // A session prefills again from scratch (the cache is reset), with the same results.
  const PrefillOutput again = gs.prefill(in);
  check_true(tag + " a second prefill on the same session gives the same logits", again.logits == gpu.pre.logits);
  expect_throw("cuda session: generate twice after one prefill", [&] {
    gs.generate(o);
    gs.generate(o);
  });
}

// Chunked prefill (PrefillInput::prefill_chunk): the prompt in forwards of 5 tokens (chunk edges fall inside the
// image rows and between text rows) must give what the whole prompt gives: on the GPU, the same rule against the
// CPU in fp32 for every prompt row's logits, and the same generated ids; on the CPU in fp32, the whole prompt's
// logits up to GEMM-shape rounding (max |diff| <= 1e-5 x max |logit|) and identical generated ids.
VR_TEST(cuda_model_session_chunked_prefill) {
  const auto recs = safetensors_records(tiny_flat_dir() + "/model.safetensors");
  const ModelConfig mc = tiny_flat_config(DType::BF16);
  PrefillInput in = make_input(mc);
  const GenerateOptions o = session_case_options();
  const Run ref = run_cpu(DType::F32, recs, in, o), base = run_cpu(DType::BF16, recs, in, o);
  const int64_t L = int64_t(in.ids.size());
  in.prefill_chunk = 5;
  const Run cpu_chunked = run_cpu(DType::F32, recs, in, o);
  const std::string ctag = "cpu chunked prefill (5 of " + std::to_string(L) + " tokens)";
  check_true(ctag + " reports its chunk", cpu_chunked.pre.prefill_chunk == 5 && ref.pre.prefill_chunk == L);
  check_true(ctag + " logits within 1e-5 x max|logit| of the whole prompt's",
             max_abs_diff(cpu_chunked.pre.logits.data(), ref.pre.logits.data(), ref.pre.logits.size()) <=
                 1e-5 * max_abs(ref.pre.logits.data(), ref.pre.logits.size()));
  check_true(ctag + " generates the whole prompt's ids:" + ids_text(cpu_chunked.gen.ids),
             cpu_chunked.gen.ids == ref.gen.ids && cpu_chunked.cache_len == ref.cache_len);

  auto gm = std::make_shared<cuda::GpuQwenVL>(mc, recs);
  cuda::GpuSession gs(gm);
  const PrefillOutput pre = gs.prefill(in);
  const GenerateResult gen = gs.generate(o);
  const std::string gtag = "cuda chunked prefill (5 of " + std::to_string(L) + " tokens)";
  check_true(gtag + " reports its chunk", pre.prefill_chunk == 5);
  const auto ref_pl = to_double(ref.pre.logits);
  check_rule(gtag + " prefill logits [L, V]", pre.logits.data(), base.pre.logits.data(), ref_pl.data(), ref_pl.size(),
             1e-3);
  check_true(gtag + " generated ids equal the CPU's:" + ids_text(gen.ids), gen.ids == ref.gen.ids);
  check_true(gtag + " KV cache length = CPU's", gs.cache_len() == ref.cache_len);
  in.prefill_chunk = 0;
  check_true("cuda prefill, free memory unknown (emulator): the whole prompt in one forward",
             gs.prefill(in).prefill_chunk == L);
}

// The automatic chunk choice (cuda::choose_prefill_chunk) on a 7B-like cost: 140 KiB of scratch per row.
VR_TEST(cuda_model_prefill_chunk_choice) {
  const auto cost = [](int64_t rows) { return size_t(rows) * 140 * 1024; };
  const int64_t GiB = int64_t(1) << 30, L = 16896;
  check_true("prefill chunk: asked for 300 -> 300", cuda::choose_prefill_chunk(L, 300, 0, 0, cost) == 300);
  check_true("prefill chunk: asked for more than the prompt -> the prompt",
             cuda::choose_prefill_chunk(100, 300, 0, 0, cost) == 100);
  check_true("prefill chunk: free memory unknown -> the whole prompt", cuda::choose_prefill_chunk(L, 0, -1, 0, cost) == L);
  check_true("prefill chunk: 8 GiB free -> the whole prompt (2.3 GiB)", cuda::choose_prefill_chunk(L, 0, 8 * GiB, 0, cost) == L);
  check_true("prefill chunk: 1 GiB free -> 4096 (560 MiB; 8192 needs 1.1 GiB)",
             cuda::choose_prefill_chunk(L, 0, GiB, 0, cost) == 4096);
  check_true("prefill chunk: 0.5 GiB free + 0.5 GiB held -> 4096 (the held scratch is freed first)",
             cuda::choose_prefill_chunk(L, 0, GiB / 2, size_t(GiB / 2), cost) == 4096);
  check_true("prefill chunk: a 1000-token prompt that does not fit whole -> 512",
             cuda::choose_prefill_chunk(1000, 0, 200 << 20, 0, cost) == 512);
  expect_throw("prefill chunk: not even 256 rows fit (100 MiB free)",
               [&] { cuda::choose_prefill_chunk(L, 0, 100 << 20, 0, cost); });
}

VR_TEST(cuda_model_kv_cache_growth) {
  const ModelConfig mc = tiny_flat_config(DType::BF16);
  WeightStore ws(safetensors_records(tiny_flat_dir() + "/model.safetensors"));
  const cuda::DeviceWeights dw(mc, ws, cuda::WeightParts::LanguageOnly);
  cuda::GpuLanguageModel lm(dw);
  const int64_t T = 9, D = mc.text.hidden, V = mc.text.vocab;
  std::vector<int32_t> ids = {361, 82, 327, 83, 198, 49, 68, 341, 259};
  std::vector<int64_t> pos(size_t(3 * T));
  for (int64_t i = 0; i < 3 * T; i++) pos[size_t(i)] = i % T;
  DeviceBuffer<int32_t> d_ids(ids);
  DeviceBuffer<float> x(static_cast<size_t>(T * D)), logits(static_cast<size_t>(V));
  // Decode 3 tokens after the prompt; `grow` moves the full cache (capacity T) to a larger one first.
  auto decode = [&](bool grow) {
    cuda::GpuKVCache cache = lm.new_cache(grow ? T : T + 3);
    lm.embed(x.get(), d_ids.get(), T);
    lm.forward(x.get(), x.get(), T, pos.data(), T, cache);
    if (grow) cache = cache.grown(T + 3);
    std::vector<float> out;
    for (int k = 0; k < 3; k++) {
      const int64_t p3[3] = {T + k, T + k, T + k};
      lm.embed(x.get(), d_ids.get() + k, 1);
      lm.forward(x.get(), x.get(), 1, p3, 1, cache);
      lm.logits(logits.get(), x.get(), 1);
      const std::vector<float> l = logits.download();
      out.insert(out.end(), l.begin(), l.end());
    }
    return out;
  };
  check_true("cuda KV cache grown mid-decode: the 3 decode steps' logits equal a large-from-the-start cache's",
             decode(true) == decode(false));
  cuda::GpuKVCache small = lm.new_cache(T);
  lm.embed(x.get(), d_ids.get(), T);
  lm.forward(x.get(), x.get(), T, pos.data(), T, small);
  expect_throw("cuda KV cache: growing to fewer rows than it holds", [&] { small.grown(T - 1); });
}

// The tests above with the split-KV decode attention on for every forward of <= 8 rows (threshold 0), in 3 splits:
// the decode and latent steps and the chunked prefill's 5-row chunks run attention_decode (GQA 2:1, Tq 1 and 5), and must
// still give the CPU's ids and stay within the rule for the logits and the latent steps' attention maps (the probe
// reads attention_decode's lse).
VR_TEST(cuda_model_session_split_kv) {
  int64_t before = 0, after_session = 0;
  {
    ScopedEnv min_keys("VREFLECT_SPLIT_KV_MIN_KEYS", "0");
    ScopedEnv splits("VREFLECT_SPLIT_KV_SPLITS", "3");  // ~45 keys in 3 splits: boundaries inside the 32-key tiles
    before = cuda::GpuLanguageModel::split_kv_forwards();
    cuda_model_session_vs_cpu();
    after_session = cuda::GpuLanguageModel::split_kv_forwards();
    cuda_model_session_chunked_prefill();
  }
  check_true("split-KV on: the session's decode forwards ran attention_decode (" +
                 std::to_string(after_session - before) + " forwards)",
             after_session - before >= 9);
  check_true("split-KV on: the chunked prefill's 9 chunks and the 9 decode forwards ran it (" +
                 std::to_string(cuda::GpuLanguageModel::split_kv_forwards() - after_session) + " forwards)",
             cuda::GpuLanguageModel::split_kv_forwards() - after_session >= 9 + 9);
  ScopedEnv bad("VREFLECT_SPLIT_KV_MIN_KEYS", "many");
  expect_throw("VREFLECT_SPLIT_KV_MIN_KEYS=many", [&] {
    const auto recs = safetensors_records(tiny_flat_dir() + "/model.safetensors");
    cuda::GpuQwenVL gm(tiny_flat_config(DType::BF16), recs);
  });
}

// The session test over the tensor-core flash attention (VREFLECT_ATTENTION=tc; attention_tc.cu, the mma modelled on
// the emulator; tiny-flat's head dim 16 runs the padded 32-column tile): ViT window / full attention over
// cu_seqlens, the prompt's causal prefill, decode and latent forwards of one row against the cache, the same rules.
VR_TEST(cuda_attention_tc_model_session) {
  ScopedEnv env("VREFLECT_ATTENTION", "tc", cuda::env_switches_changed);
  cuda_model_session_vs_cpu();
}

// The same session over the Hopper forward (VREFLECT_ATTENTION=wgmma; attention_wgmma.cu, wgmma modelled on the
// emulator; head dim 16 padded to its 128 columns; the backward is not involved).
VR_TEST(cuda_attention_wgmma_model_session) {
  if (cuda::attention_wgmma_state() != cuda::WgmmaState::Ready) {
    std::printf("  (skipped: no wgmma path on this device)\n");
    return;
  }
  ScopedEnv env("VREFLECT_ATTENTION", "wgmma", cuda::env_switches_changed);
  cuda_model_session_vs_cpu();
}

}  // namespace vr::test
