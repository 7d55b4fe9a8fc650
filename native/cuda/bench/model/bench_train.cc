#include "cuda/bench/model/bench_train.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <regex>
#include <vector>

#include "core/error.h"
#include "cuda/bench/model/bench_json.h"
#include "cuda/bench/model/bench_plan.h"
#include "cuda/model/cuda_runtime.h"
#include "cuda/model/gpu_trainer.h"
#include "train/trainer.h"

namespace vr::bench {
namespace {

constexpr int32_t kIgnore = -100;

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// src/data/boxes.ts boxTokenIndices: the merged tokens a normalised box covers, row-major in the merged grid.
std::vector<int32_t> box_tokens(const ImageGrid& g, int merge, double x0, double y0, double x1, double y1) {
  auto clampi = [](int64_t v, int64_t lo, int64_t hi) { return std::max(lo, std::min(hi, v)); };
  const int64_t h = g.h, w = g.w, W2 = w / merge;
  const int64_t x0g = clampi(int64_t(std::floor(x0 * w)), 0, w - 1), x1g = clampi(int64_t(std::ceil(x1 * w)), 0, w);
  const int64_t y0g = clampi(int64_t(std::floor(y0 * h)), 0, h - 1), y1g = clampi(int64_t(std::ceil(y1 * h)), 0, h);
  const int64_t x0t = x0g / merge, x1t = (x1g + merge - 1) / merge, y0t = y0g / merge, y1t = (y1g + merge - 1) / merge;
  std::vector<int32_t> out;
  for (int64_t yy = y0t; yy < y1t; yy++)
    for (int64_t xx = x0t; xx < x1t; xx++) out.push_back(int32_t(yy * W2 + xx));
  if (out.empty()) out.push_back(0);
  return out;
}

std::string losses_json(const StepLosses& l) {
  JsonObject j;
  j.signed_num("loss", l.loss)
      .signed_num("loss_ce", l.loss_ce)
      .signed_num("loss_resampler", l.loss_resampler)
      .signed_num("loss_mse", l.loss_mse)
      .signed_num("loss_kl", l.loss_kl)
      .boolean("resampler_skipped", l.resampler_skipped)
      .integer("tokens", l.tokens)
      .integer("targets", l.targets)
      .integer("boxes", l.boxes);
  return j.str();
}

}  // namespace

TrainBatch make_train_batch(const BenchShape& s, const TrainOptions& o) {
  const BenchIds& ids = s.ids;
  const int K = o.latent_count, merge = s.cfg.vision.merge;
  VR_CHECK(o.samples >= 1 && o.samples <= 16, "--samples must be in [1, 16], got ", o.samples);
  VR_CHECK(o.tokens % o.samples == 0, "--tokens ", o.tokens, " is not a multiple of --samples ", o.samples);
  VR_CHECK(K >= 1, "--latent-count must be >= 1, got ", K);
  VR_CHECK(o.answer_tokens >= 0, "--answer-tokens must be >= 0, got ", o.answer_tokens);
  const int64_t L = o.tokens / o.samples;
  const int64_t fixed = 11 + 3 + 2 + 5 + (K + 2) + 2;  // train_batch.ts fixedTokens
  const int64_t question = L - o.image_tokens - o.answer_tokens - fixed;
  VR_CHECK(question >= 1, L, " tokens per sample cannot hold a ", o.image_tokens, "-token image, ", o.answer_tokens,
           " answer tokens and the ", fixed, " template tokens (raise --tokens or lower --train-image-tokens)");
  const ImageGrid grid = grid_for_tokens(o.image_tokens);
  const std::vector<int32_t> box = box_tokens(grid, merge, 0.25, 0.25, 0.75, 0.75);
  Rng64 rng(o.seed);
  TrainBatch b;
  b.patch_dim = s.cfg.vision.patch_dim();
  b.latent_count = K;
  const int64_t T = o.tokens;
  b.positions.assign(size_t(3 * T), 0);
  b.cu_seqlens.push_back(0), b.cu_image_tokens.push_back(0), b.cu_sample_visual.push_back(0), b.cu_box_tokens.push_back(0);
  for (int si = 0; si < o.samples; si++) {
    std::vector<int32_t> seq, labels;
    auto push = [&](int32_t id, bool supervised) {
      seq.push_back(id);
      labels.push_back(supervised ? id : kIgnore);
    };
    auto text = [&](int64_t n, bool supervised) {
      for (int64_t i = 0; i < n; i++) push(int32_t(rng.below(ids.text_limit)), supervised);
    };
    push(ids.im_start, false), text(8, false), push(ids.im_end, false), text(1, false);
    push(ids.im_start, false), text(2, false), push(ids.vision_start, false);
    for (int64_t i = 0; i < o.image_tokens; i++) push(ids.image_pad, false);
    push(ids.vision_end, false), text(question, false);
    push(ids.im_end, false), text(1, false), push(ids.im_start, false), text(2, false);
    push(ids.lvr_start, true);
    const int64_t base = int64_t(b.input_ids.size());
    for (int k = 0; k < K; k++) {
      b.lvr_slots.push_back(int32_t(base + int64_t(seq.size())));
      push(ids.lvr, true);
    }
    push(ids.lvr_end, true), text(o.answer_tokens, true), push(ids.im_end, true), text(1, true);
    VR_CHECK(int64_t(seq.size()) == L, "train batch: sample of ", seq.size(), " tokens, expected ", L);
    // Targets: the next label within the sample; ignored: <|lvr_latent_end|> (none here), and in stage 2 <|lvr|>
    // (src/data/batch.ts ceIgnoredIds).
    for (int64_t i = 0; i < L; i++) {
      const int32_t t = i + 1 < L ? labels[size_t(i + 1)] : kIgnore;
      const bool keep = t != kIgnore && t != ids.lvr_latent_end && !(o.stage == 2 && t == ids.lvr);
      b.targets.push_back(keep ? t : kIgnore);
      b.num_targets += keep;
    }
    std::vector<int64_t> pos;
    mrope_positions(seq.data(), L, {grid}, s.cfg.image_token_id, merge, pos);
    for (int p = 0; p < 3; p++)
      for (int64_t i = 0; i < L; i++) b.positions[size_t(p * T + base + i)] = int32_t(pos[size_t(p * L + i)]);
    b.input_ids.insert(b.input_ids.end(), seq.begin(), seq.end());
    b.cu_seqlens.push_back(int32_t(base + L));
    const int32_t first_row = b.cu_image_tokens.back();
    b.grids.push_back(grid);
    b.cu_image_tokens.push_back(int32_t(first_row + o.image_tokens));
    b.cu_sample_visual.push_back(b.cu_image_tokens.back());
    for (int32_t j : box) b.box_local_idx.push_back(j), b.box_token_idx.push_back(first_row + j);
    b.cu_box_tokens.push_back(int32_t(b.box_token_idx.size()));
    b.box_sample.push_back(si);
    const size_t npix = size_t(grid.patches() * b.patch_dim), at = b.pixel_values.size();
    b.pixel_values.resize(at + npix);
    for (size_t i = 0; i < npix; i++) b.pixel_values[at + i] = float(rng.uniform() * 3.9 - 1.8);
  }
  validate_batch(b, s.cfg, ids.lvr);
  return b;
}

void write_torch_batch(const std::string& dir, const TrainBatch& b, int image_token_id) {
  const int n = b.samples();
  const int64_t T = b.tokens(), L = T / n;
  make_dirs(dir);
  const std::string pixel_file = dir + "/pixels.f32";
  FILE* f = std::fopen(pixel_file.c_str(), "wb");
  VR_CHECK(f, "cannot write ", pixel_file);
  bool ok = std::fwrite(b.pixel_values.data(), 4, b.pixel_values.size(), f) == b.pixel_values.size();
  VR_CHECK(std::fclose(f) == 0 && ok, "cannot write ", pixel_file);
  auto ints = [](const int32_t* p, int64_t n, int64_t minus = 0) {
    std::string r;
    for (int64_t i = 0; i < n; i++) r += (i ? "," : "") + std::to_string(p[i] - minus);
    return "[" + r + "]";
  };
  std::vector<std::string> boxes, slots, grids;
  for (int64_t x = 0; x < b.boxes(); x++) {
    const int s = b.box_sample[size_t(x)];
    const int32_t a = b.cu_box_tokens[size_t(x)], e = b.cu_box_tokens[size_t(x + 1)];
    boxes.push_back("{\"sample\":" + std::to_string(s) + ",\"tokens\":" + ints(&b.box_local_idx[size_t(a)], e - a) + "}");
    slots.push_back(ints(&b.lvr_slots[size_t(x * b.latent_count)], b.latent_count, int64_t(s) * L));
  }
  for (const ImageGrid& g : b.grids)
    grids.push_back("[" + std::to_string(g.t) + "," + std::to_string(g.h) + "," + std::to_string(g.w) + "]");
  JsonObject j;
  j.integer("samples", n)
      .integer("seq_len", L)
      .raw("input_ids", ints(b.input_ids.data(), T))
      .raw("targets", ints(b.targets.data(), T))
      .raw("positions", ints(b.positions.data(), 3 * T))
      .raw("image_grid_thw", json_array(grids))
      .raw("boxes", json_array(boxes))
      .raw("lvr_slots", json_array(slots))
      .integer("image_token_id", image_token_id)
      .str("pixel_file", pixel_file)
      .integer("pixel_rows", int64_t(b.pixel_values.size()) / b.patch_dim)
      .integer("patch_dim", b.patch_dim);
  const std::string path = dir + "/batch.json", text = j.str();
  f = std::fopen(path.c_str(), "wb");
  VR_CHECK(f, "cannot write ", path);
  ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  VR_CHECK(std::fclose(f) == 0 && ok, "cannot write ", path);
}

double gpu_bf16_peak(const std::string& name, std::string* source) {
  struct Part {
    const char* pattern;
    double tflops;
    const char* part;
  };
  static const Part kParts[] = {{"H100.*(PCIe|PCI-E)", 756, "H100 PCIe"}, {"H100.*NVL", 835, "H100 NVL"},
                                {"H100|H800", 989, "H100 SXM"},         {"H200|GH200", 989, "H200 SXM"},
                                {"A100", 312, "A100"},                  {"L40S", 362, "L40S"}};
  for (const Part& p : kParts) {
    if (std::regex_search(name, std::regex(p.pattern, std::regex::icase))) {
      if (source)
        *source = std::string(p.part) + " dense bf16 datasheet peak " + std::to_string(int(p.tflops)) +
                  " TFLOP/s (not measured), for \"" + name + "\"";
      return p.tflops * 1e12;
    }
  }
  if (source) *source = "no datasheet peak for \"" + name + "\"";
  return -1;
}

std::string run_train(const BenchShape& s, const BenchCheckpoint& ck, const TrainOptions& o, MemoryPoll& mem,
                      const std::string& device_name, const std::function<void(const std::string&)>& log) {
  VR_CHECK(o.steps >= 1, "--steps must be >= 1, got ", o.steps);
  VR_CHECK(o.stage == 1 || o.stage == 2, "--stage must be 1 or 2, got ", o.stage);
  const TrainBatch batch = make_train_batch(s, o);
  std::vector<TensorRecord> records = ck.records;
  if (o.stage == 2) {
    const std::vector<TensorRecord> head = write_bcm_head(s, o.latent_count, o.seed + 1000, ck.dir);
    records.insert(records.end(), head.begin(), head.end());
  }
  if (!o.torch_batch_dir.empty()) write_torch_batch(o.torch_batch_dir, batch, s.cfg.image_token_id);
  TrainerConfig tc;
  tc.stage = o.stage;
  tc.lambda_resampler = o.stage == 2 ? 1.0 : 0.5;  // upstream's weights per stage
  tc.latent_count = o.latent_count;
  tc.lvr_id = s.ids.lvr;
  const cuda::OptimizerPlacement where = cuda::optimizer_placement_from_name(o.placement);
  const bool host = where == cuda::OptimizerPlacement::Host;
  VR_CHECK(o.checkpointing == "on" || o.checkpointing == "off" || o.checkpointing == "auto",
           "--checkpointing must be on, off or auto, got '", o.checkpointing, "'");
  const int64_t free_bytes = cuda::device_free_bytes();
  const int64_t no_recompute_bytes =
      o.stage == 1 ? plan_training_stage1(s.cfg, batch.tokens(), batch.visual_tokens(), host, false).gpu_bytes : -1;
  tc.gradient_checkpointing = o.checkpointing == "on" ||
                              (o.checkpointing == "auto" && (free_bytes < 0 || no_recompute_bytes < 0 || no_recompute_bytes > free_bytes));
  log("train: gradient checkpointing " + std::string(tc.gradient_checkpointing ? "on" : "off") + " (--checkpointing " +
      o.checkpointing + (o.checkpointing == "auto" ? "; plan without recomputation " + std::to_string(no_recompute_bytes >> 20) +
                                                          " MiB, free " + std::to_string(free_bytes >> 20) + " MiB"
                                                    : std::string()) + ")");

  auto t0 = std::chrono::steady_clock::now();
  cuda::GpuTrainer trainer(s.cfg, records, tc, where);
  const double load_ms = ms_since(t0);
  mem.poll();
  const int64_t after_load = mem.last();
  log("train: trainer ready in " + std::to_string(int(load_ms)) + " ms (" +
      std::to_string(trainer.device_params().device_bytes() >> 20) + " MiB of parameter storage on the device, " +
      cuda::optimizer_placement_name(where) + " optimizer states); micro-batch " + std::to_string(batch.tokens()) +
      " tokens, " + std::to_string(batch.visual_tokens()) + " visual tokens");

  VR_CHECK(o.grad_accum >= 1, "--grad-accum must be >= 1, got ", o.grad_accum);
  std::vector<double> step_ms, fb_ms, opt_ms, norms;
  std::vector<std::string> losses;
  for (int i = 0; i < o.warmup + o.steps; i++) {
    double fb = 0;
    StepLosses l;
    for (int m = 0; m < o.grad_accum; m++) {
      t0 = std::chrono::steady_clock::now();
      l = trainer.forward_backward(batch, 1.0 / o.grad_accum);
      cudaDeviceSynchronize();
      fb += ms_since(t0);
      mem.poll();
      losses.push_back(losses_json(l));
    }
    const auto t1 = std::chrono::steady_clock::now();
    const double norm = trainer.optimizer_step(1e-5, 1.0);
    cudaDeviceSynchronize();
    const double op = ms_since(t1);
    mem.poll();
    norms.push_back(norm);
    log("train: step " + std::to_string(i + 1) + (i < o.warmup ? " (warm-up)" : "") + ": loss " +
        std::to_string(l.loss) + ", " + std::to_string(fb + op) + " ms (forward+backward " + std::to_string(fb) +
        ", optimizer " + std::to_string(op) + ")");
    if (i >= o.warmup) step_ms.push_back(fb + op), fb_ms.push_back(fb), opt_ms.push_back(op);
  }

  TrainFlopInput fin;
  for (int si = 0; si < batch.samples(); si++) fin.sample_tokens.push_back(batch.cu_seqlens[size_t(si + 1)] - batch.cu_seqlens[size_t(si)]);
  fin.targets = batch.num_targets;
  fin.grids = batch.grids;
  for (int64_t x = 0; x < batch.boxes(); x++) fin.box_tokens.push_back(batch.cu_box_tokens[size_t(x + 1)] - batch.cu_box_tokens[size_t(x)]);
  fin.latent_count = o.latent_count;
  fin.stage = o.stage;
  for (int64_t x = 0; x < batch.boxes(); x++) {
    const int si = batch.box_sample[size_t(x)];
    fin.box_sample_visual.push_back(batch.cu_sample_visual[size_t(si + 1)] - batch.cu_sample_visual[size_t(si)]);
  }
  const double flop = o.grad_accum * train_model_flop(s.cfg, fin), ms = median(step_ms), fb_med = median(fb_ms);
  std::string peak_source;
  const double peak = gpu_bf16_peak(device_name, &peak_source);
  const double achieved = ms > 0 ? flop / (ms * 1e-3) : -1;

  JsonObject cpu;
  if (o.check_cpu) {
    TrainerConfig ctc = tc;
    ModelConfig ccfg = s.cfg;
    ccfg.compute = DType::F32;
    Trainer cpu_trainer(ccfg, records, ctc);
    const StepLosses l = cpu_trainer.forward_backward(batch, 1.0);
    cpu.raw("first_losses", losses_json(l)).str("compute", "f32");
  }
  JsonObject memory;
  memory.num("device_total", double(mem.total()), "%.0f")
      .num("used_before_load", double(mem.baseline()), "%.0f")
      .num("used_after_load", double(after_load), "%.0f")
      .num("peak_used", double(mem.peak()), "%.0f")
      .integer("param_storage", int64_t(trainer.device_params().device_bytes()))
      .integer("frozen_weights", int64_t(trainer.frozen_weight_bytes()))
      .integer("pinned_staging", int64_t(trainer.device_params().staging_bytes()))
      .integer("host_param_store", int64_t(trainer.params().bytes()))
      .integer("decoder_activations", int64_t(trainer.llm().scratch_bytes()))
      .raw("plan", o.stage == 1 ? plan_training_stage1(s.cfg, batch.tokens(), batch.visual_tokens(), host,
                                                       tc.gradient_checkpointing).json()
                                 : "null");  // stage 2's plan is not ported
  JsonObject plan_inputs;  // src/plan/gpu_memory.ts TrainPlanInput
  plan_inputs.str("shape", s.preset)
      .integer("stage", o.stage)
      .integer("tokens", batch.tokens())
      .integer("visualTokens", batch.visual_tokens())
      .str("optimizerStates", o.placement)
      .str("checkpointing", tc.gradient_checkpointing ? "on" : "off");
  JsonObject r;
  r.integer("stage", o.stage)
      .str("optimizer_states", o.placement)
      .boolean("checkpointing", tc.gradient_checkpointing)
      .str("checkpointing_mode", o.checkpointing)
      .integer("tokens", batch.tokens())
      .integer("samples", batch.samples())
      .integer("visual_tokens", batch.visual_tokens())
      .integer("patches", int64_t(batch.pixel_values.size()) / batch.patch_dim)
      .integer("targets", batch.num_targets)
      .integer("boxes", batch.boxes())
      .integer("latent_count", o.latent_count)
      .integer("grad_accum", o.grad_accum)
      .integer("steps", o.steps)
      .integer("warmup", o.warmup)
      .num("load_ms", load_ms, "%.1f")
      .num("step_ms", ms, "%.4g")
      .num("forward_backward_ms", median(fb_ms), "%.4g")
      .num("optimizer_ms", median(opt_ms), "%.4g")
      .num("tokens_per_s", ms > 0 ? 1e3 * double(batch.tokens()) * o.grad_accum / ms : -1, "%.5g")
      .num("model_flop", flop, "%.6g")
      .num("achieved_tflops", achieved > 0 ? achieved / 1e12 : -1, "%.4g")
      .num("peak_tflops", peak > 0 ? peak / 1e12 : -1, "%.4g")
      .str("peak_source", peak_source)
      .num("mfu", peak > 0 && achieved > 0 ? achieved / peak : -1, "%.4f")
      .num("mfu_forward_backward", peak > 0 && fb_med > 0 ? flop / (fb_med * 1e-3) / peak : -1, "%.4f")
      .raw("step_ms_runs", json_numbers(step_ms, "%.4g"))
      .raw("grad_norms", json_numbers(norms, "%.6g"))
      .raw("losses", json_array(losses));
  if (o.check_cpu) r.raw("cpu_check", cpu.str());
  r.raw("memory", memory.str()).raw("plan_inputs", plan_inputs.str());
  return r.str();
}

}  // namespace vr::bench
