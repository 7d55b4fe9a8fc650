// vreflect_cuda_model_bench: the model-level CUDA benchmarks (issue 6: 7B decode >= 150 tok/s, training >= 40% MFU)
// on a machine without Node.js - what `vreflect bench infer|train --device cuda` measure through the addon, as one
// native command. Builds the ModelConfig of --shape (bench_shape.h says where its numbers come from), writes (or
// reuses) a seeded random bf16 checkpoint, then runs `infer` (prefill, decode, latent steps: bench_infer.h) and/or
// `train` (GpuTrainer stage 1 / 2 steps: bench_train.h). One JSON object on stdout, progress on stderr, one-line
// errors (exit 2; a section that fails once the checkpoint is ready reports {"error"} in its place, exit 1). The
// same sources build vreflect_cuda_model_bench_emu against the CPU emulator (CI: --shape tiny).
// native/cuda/bench/model/README.md has the options, the JSON fields and how gpu_session.sh runs it.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>

#include "core/error.h"
#include "cuda/bench/model/bench_checkpoint.h"
#include "cuda/bench/model/bench_infer.h"
#include "cuda/bench/model/bench_json.h"
#include "cuda/bench/model/bench_plan.h"
#include "cuda/bench/model/bench_train.h"
#include "cuda/model/gpu_session.h"
#include "cuda/model/gpu_train_params.h"

namespace vr::bench {
namespace {

const char* kUsage =
    "usage: vreflect_cuda_model_bench infer|train|all|plan [options]\n"
    "        (plan: the ported memory plans for these options, no device, no checkpoint)\n"
    "model:  --shape 7b|3b|tiny (default 7b)  --layers N  --vit-layers N  (default: the preset's depth)\n"
    "        --vocab N (cut the vocabulary, special ids moved to its top)  --seed N (weights, default 1)\n"
    "        --checkpoint-dir DIR (default $VREFLECT_BENCH_DIR or /tmp/vreflect-model-bench, then a folder per\n"
    "        shape; reused when its marker matches)  --full-checkpoint (write / reuse the preset's full-depth\n"
    "        checkpoint and run the cut depth on it: one checkpoint serves every --layers / --vit-layers)\n"
    "infer:  --image-tokens N (256)  --prompt-tokens N (49: text tokens around the image)  --new-tokens N (128)\n"
    "        --latent-steps N (8; 0: no latent run)  --repeats N (3)  --warmup N (1)  --prefill-chunk N (0: auto)\n"
    "        --graphs-compare 0|1 (1: also decode with VREFLECT_CUDA_GRAPHS=on and =off, interleaved)\n"
    "train:  --tokens N (1024 per micro-batch)  --samples N (1)  --train-image-tokens N (576)\n"
    "        --answer-tokens N (128)  --latent-count N (8)  --steps N (3)  --train-warmup N (1)\n"
    "        --grad-accum N (1: micro-batches per optimizer step)  --stage 1|2 (1; 2: a random BCM teacher is\n"
    "        written beside the checkpoint, the DAC trained)\n"
    "        --optimizer-states gpu|host (gpu)  --checkpointing on|off|auto (auto: off when the plan without\n"
    "        recomputation fits the free device memory, stage 1; else on)  --check-cpu (the CPU Trainer's losses on the same batch: small\n"
    "        shapes only)  --torch-batch DIR (batch.json + pixels.f32 for scripts_bench/torch_train.py)\n";

struct Options {
  std::string mode;
  std::string shape = "7b";
  int layers = 0, vit_layers = 0, vocab = 0;
  uint64_t seed = 1;
  std::string checkpoint_dir;
  bool full_checkpoint = false;
  InferOptions infer;
  TrainOptions train;
};

int64_t int_value(const std::string& flag, const char* v) {
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  VR_CHECK(end && *end == '\0' && end != v && x >= 0, flag, " needs a non-negative integer, got '", v, "'");
  return x;
}

Options parse(int argc, char** argv) {
  Options o;
  VR_CHECK(argc >= 2, "missing the mode (infer, train or all); --help lists the options");
  o.mode = argv[1];
  if (o.mode == "--help" || o.mode == "-h") return o;
  VR_CHECK(o.mode == "infer" || o.mode == "train" || o.mode == "all" || o.mode == "plan", "unknown mode '", o.mode,
           "' (infer, train, all or plan)");
  for (int i = 2; i < argc; i++) {
    const std::string f = argv[i];
    if (f == "--check-cpu" || f == "--full-checkpoint") {
      (f == "--check-cpu" ? o.train.check_cpu : o.full_checkpoint) = true;
      continue;
    }
    VR_CHECK(f.rfind("--", 0) == 0, "unexpected argument '", f, "'");
    VR_CHECK(i + 1 < argc, f, " needs a value");
    const char* v = argv[++i];
    auto n = [&] { return int_value(f, v); };
    if (f == "--shape") o.shape = v;
    else if (f == "--layers") o.layers = int(n());
    else if (f == "--vit-layers") o.vit_layers = int(n());
    else if (f == "--vocab") o.vocab = int(n());
    else if (f == "--seed") o.seed = uint64_t(n());
    else if (f == "--checkpoint-dir") o.checkpoint_dir = v;
    else if (f == "--image-tokens") o.infer.image_tokens = n();
    else if (f == "--prompt-tokens") o.infer.prompt_tokens = n();
    else if (f == "--new-tokens") o.infer.new_tokens = int(n());
    else if (f == "--latent-steps") o.infer.latent_steps = int(n());
    else if (f == "--repeats") o.infer.repeats = int(n());
    else if (f == "--warmup") o.infer.warmup = int(n());
    else if (f == "--prefill-chunk") o.infer.prefill_chunk = n();
    else if (f == "--graphs-compare") o.infer.graphs_compare = n() != 0;
    else if (f == "--tokens") o.train.tokens = n();
    else if (f == "--samples") o.train.samples = int(n());
    else if (f == "--train-image-tokens") o.train.image_tokens = n();
    else if (f == "--answer-tokens") o.train.answer_tokens = n();
    else if (f == "--latent-count") o.train.latent_count = int(n());
    else if (f == "--steps") o.train.steps = int(n());
    else if (f == "--train-warmup") o.train.warmup = int(n());
    else if (f == "--grad-accum") o.train.grad_accum = int(n());
    else if (f == "--stage") o.train.stage = int(n());
    else if (f == "--optimizer-states") o.train.placement = v;
    else if (f == "--checkpointing") o.train.checkpointing = v;
    else if (f == "--torch-batch") o.train.torch_batch_dir = v;
    else fail("unknown option ", f, " (--help lists them)");
  }
  return o;
}

void log(const std::string& line) {
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  if (o.mode == "--help" || o.mode == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const BenchShape s = make_shape(o.shape, o.layers, o.vit_layers, o.vocab);
  if (o.mode == "plan") {  // the ported plans alone (test/native/cuda_model_bench.test.ts holds them against the TS)
    const TrainBatch b = make_train_batch(s, o.train);
    const bool host = cuda::optimizer_placement_from_name(o.train.placement) == cuda::OptimizerPlacement::Host;
    std::printf("{\"infer\":%s,\"train\":%s}\n",
                plan_inference(s.cfg, o.infer.image_tokens, o.infer.prompt_tokens, o.infer.new_tokens,
                               o.infer.latent_steps).json().c_str(),
                plan_training_stage1(s.cfg, b.tokens(), b.visual_tokens(), host, o.train.checkpointing != "off").json().c_str());
    return 0;
  }
  cuda::require_cuda_device();
  const std::string device = cuda::cuda_device_name();
  // The checkpoint's shape: the run's, or the preset's full depth (a superset: the loaders read tensors by name).
  const BenchShape cs = o.full_checkpoint ? make_shape(o.shape, 0, 0, o.vocab) : s;
  std::string dir = o.checkpoint_dir;
  if (dir.empty()) {
    const char* root = std::getenv("VREFLECT_BENCH_DIR");
    dir = std::string(root && *root ? root : "/tmp/vreflect-model-bench") + "/" + cs.preset + "-l" +
          std::to_string(cs.cfg.text.layers) + "-v" + std::to_string(cs.cfg.vision.depth) + "-vocab" +
          std::to_string(cs.cfg.text.vocab) + "-seed" + std::to_string(o.seed);
  }
  log("model bench on " + device + ": " + s.name);
  const BenchCheckpoint ck = ensure_checkpoint(cs, o.seed, dir);
  log(ck.generated ? "checkpoint written to " + dir + " in " + std::to_string(int(ck.seconds)) + " s"
                   : "checkpoint reused: " + dir);
  const ParamCounts pc = param_counts(s);
  JsonObject shape;
  shape.str("preset", s.preset)
      .str("name", s.name)
      .integer("layers", s.cfg.text.layers)
      .integer("full_layers", s.full_layers)
      .integer("vit_layers", s.cfg.vision.depth)
      .integer("full_vit_layers", s.full_vit_layers)
      .integer("vocab", s.cfg.text.vocab)
      .integer("hidden", s.cfg.text.hidden)
      .integer("llm_params", pc.llm)
      .integer("vision_params", pc.vision);
  JsonObject ckj;
  ckj.str("dir", ck.dir).str("shape", cs.name).integer("bytes", int64_t(ck.bytes)).boolean("generated", ck.generated).num("seconds", ck.seconds, "%.1f");
  JsonObject out;
  out.str("tool", "vreflect_cuda_model_bench")
      .raw("device", JsonObject().str("name", device).str("kind",
#if defined(VR_CUDA_EMULATED)
                                                           "emulator"
#else
                                                           "gpu"
#endif
                                                           ).str())
      .str("date", utc_now())
      .raw("shape", shape.str())
      .raw("checkpoint", ckj.str());
  // A section that fails (out of memory, say) reports {"error"} and the exit status is 1; the other still runs.
  int rc = 0;
  auto section = [&](const char* name, const std::function<std::string()>& body) {
    try {
      out.raw(name, body());
    } catch (const std::exception& e) {
      std::string msg = e.what();
      for (char& c : msg)
        if (c == '\n') c = ' ';
      log(std::string(name) + " failed: " + msg);
      out.raw(name, JsonObject().str("error", msg).str());
      rc = 1;
    }
  };
  if (o.mode == "infer" || o.mode == "all") {
    section("infer", [&] {
      InferOptions io = o.infer;
      io.seed = o.seed + 100;
      MemoryPoll mem;
      return run_infer(s, ck, io, mem, log);
    });
  }
  if (o.mode == "train" || o.mode == "all") {
    section("train", [&] {
      MemoryPoll mem;
      return run_train(s, ck, o.train, mem, device, log);
    });
  }
  std::printf("%s\n", out.str().c_str());
  return rc;
}

}  // namespace
}  // namespace vr::bench

int main(int argc, char** argv) {
  try {
    return vr::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    for (char& c : msg)
      if (c == '\n') c = ' ';
    std::fprintf(stderr, "vreflect_cuda_model_bench: %s\n", msg.c_str());
    return 2;
  }
}
