// Command line of vreflect_cuda_bench and the list of cases it plans (no GPU needed for either, so --dry-run can
// check both anywhere).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace vr::bench {

struct Options {
  bool json = false, quick = false, dry_run = false, help = false;
  int reps = 10, warmup = 2;
  double max_case_seconds = 3.0;  // fewer reps when one run is slow (the scalar attention at 16k)
  std::vector<std::string> kernels;  // attention_fwd, attention_bwd, attention_decode, cross_attention_fwd, ...
  std::vector<int64_t> seqs;         // attention sequence lengths
  std::vector<int64_t> keys;         // cross-attention key counts
  std::vector<int64_t> gemm_m;       // GEMM rows
  std::vector<int64_t> gemv_m;       // GEMM rows of the decode cases (<= 8: cuBLASLt vs the skinny kernel)
  std::vector<int64_t> decode_keys;  // attention_decode: cached keys before the one new row
  std::vector<std::string> impls;    // gemm implementations: cublaslt, vreflect-kernel, vreflect-gemv
  // --attention-tiles: tensor-core attention tile variants to time (names of cuda::attention_tc_tiles; attention_fwd
  // runs the forward ones in the list, attention_bwd the backward ones); empty: the variant the environment picks.
  std::vector<std::string> attention_tiles;
};

// Parses argv; throws vr::Error (one line) on an unknown option or a bad value.
Options parse_options(int argc, char** argv);
const char* usage();

// One planned measurement. Shape keys and values in output order.
struct Case {
  std::string kernel, impl;
  std::vector<std::pair<std::string, int64_t>> shape;
  std::string tile;  // attention_fwd / attention_bwd: the tile variant to run ("": VREFLECT_ATTENTION_TILE_* / default)
  int causal = -1;  // -1: not an attention case (no "causal" key)
  double flop = 0;  // floating-point operations of one run (FlashAttention's conventions for attention)
  double bytes = 0;  // global-memory bytes one run must move at least (decode: the K/V cache), 0: not reported
  std::string dtype = "bf16";  // the activations' storage ("f32": the training decoder's fp32 RMSNorm, adamw)
  int64_t get(const std::string& key) const;
};

std::vector<Case> plan_cases(const Options& o);

// The model shapes (Qwen2.5-VL-7B LLM and the BCM/DAC resampler).
constexpr int kHeadsQ = 28, kHeadsKV = 4, kHeadDim = 128;
constexpr int kCrossQueries = 8, kCrossHeads = 8, kCrossHeadDim = 448;  // 8 x 448 = 3584

}  // namespace vr::bench
