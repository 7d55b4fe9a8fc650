// The random bf16 checkpoint of vreflect_cuda_model_bench: one model.safetensors with every tensor of
// tensor_specs() (flat released names, name order) plus config.json, in a directory of its own. Values: a seeded
// pool of N(0, 0.02) samples rounded to bf16, copied in 4096-value slices at random offsets (norm weights 1), as
// src/bench/random_weights.ts does (speed does not depend on the values; they only have to stay finite).
// A directory is reused when its marker (bench_checkpoint.json: generator version, shape, seed, file size; written
// last, so an interrupted write never looks complete) matches the request.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/bench/model/bench_shape.h"
#include "model/weights.h"

namespace vr::bench {

struct BenchCheckpoint {
  std::string dir;
  std::vector<TensorRecord> records;  // what the loaders take (GpuQwenVL, GpuTrainer, the CPU Trainer)
  uint64_t bytes = 0;                 // of model.safetensors
  bool generated = false;             // false: reused
  double seconds = 0;                 // writing it (0 when reused)
};

// Writes (or reuses) the checkpoint of `s` with this seed in `dir` (created). vr::Error naming the path on I/O
// failures (disk full included).
BenchCheckpoint ensure_checkpoint(const BenchShape& s, uint64_t seed, const std::string& dir);

// Stage 2's frozen BCM teacher (upstream's "box_feature_resampler.*" tensors, random like the rest) in
// dir/bcm_head.safetensors, written every call (~100 MB for the 7B); returns its records. The checkpoint itself stays
// a plain Qwen2.5-VL checkpoint (transformers loads it).
std::vector<TensorRecord> write_bcm_head(const BenchShape& s, int latent_count, uint64_t seed, const std::string& dir);

// mkdir -p; vr::Error naming the directory when it cannot be made.
void make_dirs(const std::string& dir);

// splitmix64: the seeded generator of the weights and the synthetic batches.
class Rng64 {
 public:
  explicit Rng64(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
  int64_t below(int64_t n) { return int64_t(next() % uint64_t(n)); }

 private:
  uint64_t s_;
};

}  // namespace vr::bench
