#include "cuda/bench/model/bench_infer.h"

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "cuda/bench/model/bench_json.h"
#include "cuda/bench/model/bench_plan.h"
#include "cuda/model/gpu_session.h"

namespace vr::bench {
namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

PrefillInput make_prompt(const BenchShape& s, const InferOptions& o, bool latent) {
  const BenchIds& b = s.ids;
  Rng64 rng(o.seed);
  PrefillInput in;
  in.grids = {grid_for_tokens(o.image_tokens)};
  in.prefill_chunk = o.prefill_chunk;
  const int64_t before = (o.prompt_tokens - 3) / 2, after = o.prompt_tokens - 3 - before;
  auto text = [&](int64_t n) {
    for (int64_t i = 0; i < n; i++) in.ids.push_back(int32_t(rng.below(b.text_limit)));
  };
  in.ids.push_back(b.im_start);
  text(before);
  in.ids.push_back(b.vision_start);
  in.ids.insert(in.ids.end(), size_t(o.image_tokens), b.image_pad);
  in.ids.push_back(b.vision_end);
  text(after);
  if (latent) in.ids.back() = b.lvr_start;
  const int64_t n = in.grids[0].patches() * s.cfg.vision.patch_dim();
  in.pixel_values.resize(size_t(n));
  for (float& x : in.pixel_values) x = float(rng.uniform() * 3.9 - 1.8);  // normalised CLIP pixels: ~[-1.8, 2.1]
  return in;
}

GenerateOptions make_generate(const BenchShape& s, int new_tokens, int latent_steps) {
  GenerateOptions g;
  g.max_new_tokens = new_tokens;
  g.latent_steps = latent_steps;
  g.lvr_start_id = latent_steps > 0 ? s.ids.lvr_start : -1;
  return g;  // no eos ids: every run decodes new_tokens
}

// Sets VREFLECT_CUDA_GRAPHS for a scope (the session reads it per generate call) and restores it.
struct GraphsEnv {
  std::string old;
  bool had;
  explicit GraphsEnv(const char* mode) {
    const char* o = std::getenv("VREFLECT_CUDA_GRAPHS");
    had = o != nullptr;
    if (had) old = o;
    setenv("VREFLECT_CUDA_GRAPHS", mode, 1);
  }
  ~GraphsEnv() {
    if (had) setenv("VREFLECT_CUDA_GRAPHS", old.c_str(), 1);
    else unsetenv("VREFLECT_CUDA_GRAPHS");
  }
};

// Decode with CUDA graphs on and off, `repeats` sessions each, interleaved; the "graphs" object.
std::string compare_graphs(const std::shared_ptr<cuda::GpuQwenVL>& model, const BenchShape& s,
                           const PrefillInput& prompt, const InferOptions& o,
                           const std::function<void(const std::string&)>& log) {
  struct Mode {
    const char* name;
    std::vector<double> ms_tok, wall_tok;
    int64_t launches = 0, forwards = 0;
  } modes[2] = {{"on", {}, {}}, {"off", {}, {}}};
  for (int r = 0; r < o.repeats; r++)
    for (int k = 0; k < 2; k++) {
      Mode& m = modes[(r + k) % 2];  // on/off, then off/on: drifts (clocks, heat) hit both alike
      const GraphsEnv env(m.name);
      cuda::GpuSession gs(model);
      gs.prefill(prompt);
      const int64_t l0 = cuda::GpuSession::graph_launches();
      const auto t0 = std::chrono::steady_clock::now();
      const GenerateResult g = gs.generate(make_generate(s, o.new_tokens, 0));
      const double wall = ms_since(t0);
      VR_CHECK(g.decode_forwards > 0, "infer: generate ran no decode forward");
      m.ms_tok.push_back(g.decode_ms / g.decode_forwards);
      m.wall_tok.push_back(wall / g.decode_forwards);
      m.launches += cuda::GpuSession::graph_launches() - l0;
      m.forwards += g.decode_forwards;
    }
  JsonObject out;
  double wall[2];
  for (int k = 0; k < 2; k++) {
    const Mode& m = modes[k];
    const double ms = median(m.ms_tok);
    wall[k] = median(m.wall_tok);
    JsonObject j;
    j.num("decode_ms_per_token", ms, "%.4g")
        .num("decode_tokens_per_s", ms > 0 ? 1e3 / ms : -1, "%.5g")
        .num("decode_wall_ms_per_token", wall[k], "%.4g")
        .num("decode_wall_tokens_per_s", wall[k] > 0 ? 1e3 / wall[k] : -1, "%.5g")
        .integer("decode_forwards", m.forwards)
        .integer("graph_launches", m.launches)
        .raw("decode_wall_ms_per_token_runs", json_numbers(m.wall_tok, "%.4g"));
    out.raw(m.name, j.str());
  }
  out.num("wall_speedup", wall[0] > 0 ? wall[1] / wall[0] : -1, "%.4g");
  log("infer: CUDA graphs on " + std::to_string(wall[0]) + " ms/token, off " + std::to_string(wall[1]) +
      " ms/token (whole generate call)");
  return out.str();
}

}  // namespace

std::string run_infer(const BenchShape& s, const BenchCheckpoint& ck, const InferOptions& o, MemoryPoll& mem,
                      const std::function<void(const std::string&)>& log) {
  VR_CHECK(o.prompt_tokens >= 4, "--prompt-tokens must be >= 4 (the template's markers), got ", o.prompt_tokens);
  VR_CHECK(o.new_tokens >= 2, "--new-tokens must be >= 2, got ", o.new_tokens);
  VR_CHECK(o.repeats >= 1, "--repeats must be >= 1, got ", o.repeats);
  const PrefillInput prompt = make_prompt(s, o, false);
  const int64_t L = int64_t(prompt.ids.size());
  const ImageGrid grid = prompt.grids[0];

  auto t0 = std::chrono::steady_clock::now();
  auto model = std::make_shared<cuda::GpuQwenVL>(s.cfg, ck.records);
  const double load_ms = ms_since(t0);
  mem.poll();
  const int64_t after_load = mem.last();
  log("infer: model on the device in " + std::to_string(int(load_ms)) + " ms (" +
      std::to_string(model->weight_bytes() >> 20) + " MiB of weights); prompt " + std::to_string(L) + " tokens, " +
      std::to_string(grid.patches()) + " patches");

  for (int w = 0; w < o.warmup; w++) {
    cuda::GpuSession ws(model);
    ws.prefill(prompt);
    ws.generate(make_generate(s, std::min(o.new_tokens, 4), 0));
    mem.poll();
  }
  std::vector<double> prefill_ms, vision_ms, llm_ms, decode_ms_tok, generate_ms;
  PrefillOutput last_pre;
  int64_t generated = -1, forwards = -1;
  for (int r = 0; r < o.repeats; r++) {
    cuda::GpuSession gs(model);
    t0 = std::chrono::steady_clock::now();
    last_pre = gs.prefill(prompt);
    prefill_ms.push_back(ms_since(t0));
    vision_ms.push_back(last_pre.vision_ms), llm_ms.push_back(last_pre.llm_ms);
    mem.poll();
    t0 = std::chrono::steady_clock::now();
    const GenerateResult g = gs.generate(make_generate(s, o.new_tokens, 0));
    generate_ms.push_back(ms_since(t0));
    mem.poll();
    VR_CHECK(g.decode_forwards > 0, "infer: generate ran no decode forward");
    decode_ms_tok.push_back(g.decode_ms / g.decode_forwards);
    generated = int64_t(g.ids.size()), forwards = g.decode_forwards;
    log("infer: repeat " + std::to_string(r + 1) + ": prefill " + std::to_string(prefill_ms.back()) + " ms, decode " +
        std::to_string(decode_ms_tok.back()) + " ms/token (" + std::to_string(g.decode_forwards) + " forwards)");
  }

  const std::string graphs = o.graphs_compare ? compare_graphs(model, s, prompt, o, log) : std::string();
  const char* graphs_mode = std::getenv("VREFLECT_CUDA_GRAPHS");

  JsonObject latent;
  if (o.latent_steps > 0) {
    cuda::GpuSession ls(model);
    ls.prefill(make_prompt(s, o, true));
    const GenerateResult g = ls.generate(make_generate(s, o.new_tokens, o.latent_steps));
    mem.poll();
    int latent_forwards = 0;
    for (uint8_t x : g.latent_input) latent_forwards += x;
    latent.integer("generated", int64_t(g.ids.size()))
        .integer("decode_forwards", g.decode_forwards)
        .integer("latent_steps_run", g.latent_steps_run)
        .integer("latent_input_forwards", latent_forwards)
        .num("ms_per_forward", g.decode_forwards ? g.decode_ms / g.decode_forwards : -1, "%.4g")
        .num("forwards_per_s", g.decode_ms > 0 ? 1e3 * g.decode_forwards / g.decode_ms : -1, "%.4g")
        .str("stop_reason", g.stop_reason);
  }

  const double pre_ms = median(prefill_ms), dec_ms = median(decode_ms_tok);
  // The whole generate call per decode forward: the forwards plus each step's greedy pick, the id's download and the
  // decoding rules on the host (what a user waits for per token; GenerateResult's decode_ms times the forwards only).
  const double wall_ms = forwards > 0 ? median(generate_ms) / double(forwards) : -1;
  const double flop = prefill_flop(s.cfg, &grid, L);
  const int64_t kv_bytes_token = int64_t(s.cfg.text.layers) * 2 * s.cfg.text.kv_heads * s.cfg.text.head_dim * 2;
  // Bytes a decode step must read: the decoder's weights + the KV cache at the mean context of the decode.
  const double decode_bytes = double(decode_weight_bytes(s)) + double(kv_bytes_token) * (L + o.new_tokens / 2.0);
  const InferPlan plan = plan_inference(s.cfg, o.image_tokens, L - o.image_tokens, o.new_tokens, o.latent_steps);
  JsonObject arenas;
  arenas.integer("weights", int64_t(model->weight_bytes()))
      .integer("vit_scratch", last_pre.vit_scratch_bytes)
      .integer("llm_scratch", last_pre.llm_scratch_bytes)
      .integer("prompt", last_pre.prompt_bytes)
      .integer("features", last_pre.feature_bytes)
      .integer("kv_cache_planned", kv_bytes_token * (L + o.new_tokens + o.latent_steps));
  JsonObject memory;
  memory.num("device_total", double(mem.total()), "%.0f")
      .num("used_before_load", double(mem.baseline()), "%.0f")
      .num("used_after_load", double(after_load), "%.0f")
      .num("peak_used", double(mem.peak()), "%.0f")
      .raw("arenas", arenas.str())
      .raw("plan", plan.json());
  JsonObject plan_inputs;  // src/plan/gpu_memory.ts InferPlanInput
  plan_inputs.str("shape", s.preset)
      .integer("imageTokens", o.image_tokens)
      .integer("promptTokens", L - o.image_tokens)
      .integer("maxNewTokens", o.new_tokens)
      .integer("latentSteps", o.latent_steps);
  JsonObject r;
  r.integer("prompt_tokens", L)
      .integer("image_tokens", o.image_tokens)
      .integer("patches", grid.patches())
      .raw("grid", "[" + std::to_string(grid.t) + "," + std::to_string(grid.h) + "," + std::to_string(grid.w) + "]")
      .integer("prefill_chunk", last_pre.prefill_chunk)
      .integer("new_tokens", o.new_tokens)
      .integer("generated", generated)
      .integer("decode_forwards", forwards)
      .integer("repeats", o.repeats)
      .num("load_ms", load_ms, "%.1f")
      .num("prefill_ms", pre_ms, "%.4g")
      .num("prefill_vision_ms", median(vision_ms), "%.4g")
      .num("prefill_llm_ms", median(llm_ms), "%.4g")
      .num("prefill_tokens_per_s", pre_ms > 0 ? 1e3 * L / pre_ms : -1, "%.5g")
      .num("prefill_flop", flop, "%.6g")
      .num("prefill_tflops", pre_ms > 0 ? flop / (pre_ms * 1e-3) / 1e12 : -1, "%.4g")
      .num("decode_ms_per_token", dec_ms, "%.4g")
      .num("decode_tokens_per_s", dec_ms > 0 ? 1e3 / dec_ms : -1, "%.5g")
      .num("decode_wall_ms_per_token", wall_ms, "%.4g")
      .num("decode_wall_tokens_per_s", wall_ms > 0 ? 1e3 / wall_ms : -1, "%.5g")
      .num("decode_bytes_per_token", decode_bytes, "%.6g")
      .num("decode_gbs", dec_ms > 0 ? decode_bytes / (dec_ms * 1e-3) / 1e9 : -1, "%.4g")
      .raw("prefill_ms_runs", json_numbers(prefill_ms, "%.4g"))
      .raw("decode_ms_per_token_runs", json_numbers(decode_ms_tok, "%.4g"))
      .raw("generate_ms_runs", json_numbers(generate_ms, "%.4g"));
  r.str("graphs_mode", graphs_mode && *graphs_mode ? graphs_mode : "auto");
  if (!graphs.empty()) r.raw("graphs", graphs);
  if (o.latent_steps > 0) r.raw("latent", latent.str());
  r.raw("memory", memory.str()).raw("plan_inputs", plan_inputs.str());
  return r.str();
}

}  // namespace vr::bench
