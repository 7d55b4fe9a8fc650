// The `infer` measurement of vreflect_cuda_model_bench: GpuQwenVL over the random checkpoint, and per repeat a fresh
// GpuSession that prefills one image of image_tokens merged tokens inside prompt_tokens text tokens
// (<|im_start|> text <|vision_start|> pads <|vision_end|> text), then decodes new_tokens greedily (no stop ids, so
// every run decodes the same count). A second session runs a latent-step generation: the same prompt ending in
// <|lvr_start|>, latent_steps forwards fed the last hidden state, then tokens. Timed on the host clock around the
// calls (each returns results to the host, so the device work is done); decode_ms_per_token is GenerateResult's
// (the forwards only), decode_wall_ms_per_token the whole generate call per forward (greedy pick, id download and
// the host's decoding rules included: the figure held against the 150 tok/s target). Medians over the repeats after `warmup` untimed runs.
// The main runs decode as VREFLECT_CUDA_GRAPHS says (unset: auto = CUDA graphs). With graphs_compare, `repeats` more
// sessions per mode decode with VREFLECT_CUDA_GRAPHS=on and =off, interleaved (on/off, off/on, ...), into the report's
// "graphs" object: the same figures per mode, the steps replayed from graphs, and the on/off speed-up.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "cuda/bench/model/bench_checkpoint.h"
#include "cuda/bench/model/bench_memory.h"
#include "cuda/bench/model/bench_shape.h"

namespace vr::bench {

struct InferOptions {
  int64_t image_tokens = 256;  // 448x448 px: with 49 text tokens the 305-token prompt of `bench infer`
  int64_t prompt_tokens = 49;
  int new_tokens = 128;
  int latent_steps = 8;        // 0: no latent run
  int repeats = 3, warmup = 1;
  int64_t prefill_chunk = 0;   // PrefillInput::prefill_chunk (0: the session's automatic choice)
  bool graphs_compare = true;  // the "graphs" object: decode with CUDA graphs on vs off
  uint64_t seed = 1;
};

// The "infer" object of the report (JSON). `log` gets progress lines.
std::string run_infer(const BenchShape& s, const BenchCheckpoint& ck, const InferOptions& o, MemoryPoll& mem,
                      const std::function<void(const std::string&)>& log);

}  // namespace vr::bench
