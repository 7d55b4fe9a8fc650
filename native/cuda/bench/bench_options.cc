// vreflect_cuda_bench: options and case planning.
#include "cuda/bench/bench_options.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "core/error.h"
#include "cuda/bench/bench_elementwise.h"
#include "cuda/kernels/cuda_kernels.h"

namespace vr::bench {

namespace {

const std::vector<std::string> kKernels = {"attention_fwd", "attention_bwd", "attention_decode",
                                           "cross_attention_fwd", "cross_attention_bwd", "gemm"};
// vreflect-gemv: the skinny kernel (kernels/gemv.cu), planned only for the --gemv-m rows (<= 8);
// vreflect-gemv-swiglu: the decode MLP's fused gate / up / SwiGLU pass (gemv_swiglu), only on the gate+up shape.
const std::vector<std::string> kImpls = {"cublaslt", "vreflect-kernel", "vreflect-gemv", "vreflect-gemv-swiglu"};
// attention_decode: the split-KV kernel, and the flash forward kernel on the same one-row problem (the model's path
// below its split-KV threshold), so one run shows where the split pays.
const std::vector<std::string> kDecodeImpls = {"split-kv", "flash-forward"};

// The 7B's Linear shapes as (K, N): fused QKV, attention output, fused gate+up, down.
const std::vector<std::pair<int64_t, int64_t>> kGemmKN = {
    {3584, 3584 + 2 * 512}, {3584, 3584}, {3584, 2 * 18944}, {18944, 3584}};
// A decode step's Linears and the LM head: what --gemv-m rows time. Gate and up are one case of N = 2 x 18944: the
// decode step runs them as one fused pass (vreflect-gemv-swiglu), the others time the same weights as one GEMM.
constexpr int64_t kGateUpN = 2 * 18944;
const std::vector<std::pair<int64_t, int64_t>> kDecodeKN = {
    {3584, 3584 + 2 * 512}, {3584, 3584}, {3584, kGateUpN}, {18944, 3584}, {3584, 152064}};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> r;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) r.push_back(item);
  return r;
}

int64_t parse_int(const std::string& opt, const std::string& v, int64_t lo, int64_t hi) {
  char* end = nullptr;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  int64_t mult = 1;
  if (end && (*end == 'k' || *end == 'K')) mult = 1024, end++;
  if (v.empty() || !end || *end || x * mult < lo || x * mult > hi)
    fail("vreflect_cuda_bench: ", opt, " wants an integer in [", lo, ", ", hi, "], got '", v, "'");
  return x * mult;
}

std::vector<int64_t> parse_list(const std::string& opt, const std::string& v, int64_t lo, int64_t hi) {
  std::vector<int64_t> r;
  for (const std::string& s : split(v)) r.push_back(parse_int(opt, s, lo, hi));
  if (r.empty()) fail("vreflect_cuda_bench: ", opt, " wants a comma-separated list, got '", v, "'");
  return r;
}

std::vector<std::string> parse_names(const std::string& opt, const std::string& v,
                                     const std::vector<std::string>& allowed) {
  std::vector<std::string> r = split(v);
  if (r.empty()) fail("vreflect_cuda_bench: ", opt, " wants a comma-separated list, got '", v, "'");
  for (const std::string& s : r)
    if (std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
      std::string all;
      for (const std::string& a : allowed) all += (all.empty() ? "" : ", ") + a;
      fail("vreflect_cuda_bench: ", opt, " '", s, "' is not one of ", all);
    }
  return r;
}

// The Hopper kernels' variants as --attention-tiles names them: "wgmma:<variant>" (forward or backward).
std::vector<std::string> wgmma_tiles(bool backward) {
  std::vector<std::string> r;
  for (const std::string& t : backward ? cuda::attention_wgmma_backward_tiles() : cuda::attention_wgmma_tiles())
    r.push_back("wgmma:" + t);
  return r;
}

// --attention-tiles: "all" or names of forward or backward variants (each must name at least one), the wgmma
// kernels' as "wgmma:<variant>".
std::vector<std::string> parse_tiles(const std::string& opt, const std::string& v) {
  const std::vector<std::string> fwd = cuda::attention_tc_tiles(false), bwd = cuda::attention_tc_tiles(true);
  std::vector<std::string> all = fwd;
  for (const std::string& b : bwd)
    if (std::find(all.begin(), all.end(), b) == all.end()) all.push_back(b);
  for (bool bwd : {false, true})
    for (const std::string& w : wgmma_tiles(bwd))
      if (std::find(all.begin(), all.end(), w) == all.end()) all.push_back(w);
  if (v == "all") return all;
  return parse_names(opt, v, all);
}

// --kernels: the names above, the memory-bound kernels' (bench_elementwise.h), and "elementwise" for all of those.
std::vector<std::string> parse_kernels(const std::string& opt, const std::string& v) {
  std::vector<std::string> allowed = kKernels;
  allowed.push_back("elementwise");
  for (const std::string& k : elementwise_kernels()) allowed.push_back(k);
  std::vector<std::string> r;
  for (const std::string& k : parse_names(opt, v, allowed)) {
    if (k != "elementwise") r.push_back(k);
    else r.insert(r.end(), elementwise_kernels().begin(), elementwise_kernels().end());
  }
  return r;
}

bool has(const std::vector<std::string>& list, const std::string& x) {
  return std::find(list.begin(), list.end(), x) != list.end();
}

}  // namespace

const char* usage() {
  return "usage: vreflect_cuda_bench [--json] [--quick] [--dry-run] [--reps N] [--warmup N]\n"
         "         [--kernels attention_fwd,attention_bwd,attention_decode,cross_attention_fwd,\n"
         "                    cross_attention_bwd,gemm,elementwise|swiglu_fwd,rmsnorm_bwd,...]\n"
         "         [--seqs 512,1k,...] [--keys 1k,4k,16k] [--decode-keys 512,1k,4k,16k,64k] [--gemm-m 512,...]\n"
         "         [--gemv-m 1,4,8] [--impl cublaslt,vreflect-kernel,vreflect-gemv,vreflect-gemv-swiglu]\n"
         "         [--max-case-seconds S] [--attention-tiles all|64x64w4,128x64w4s,...]\n"
         "Times vreflect's CUDA kernels (bf16) with cudaEvents (median of --reps runs after --warmup) on the\n"
         "Qwen2.5-VL-7B shapes and prints one JSON object (--json) or a table. --quick: fewer shapes and reps.\n"
         "attention_decode: one new row after N cached keys (28:4 heads of 128), split-KV vs the flash kernel; its\n"
         "figure is GB/s of K/V cache read (\"gbs\"), against the HBM roofline.\n"
         "gemm at --gemv-m rows (<= 8; decode steps): the decode Linears and the LM head, cuBLASLt vs the skinny\n"
         "kernel (vreflect-gemv), with GB/s of weights read (\"gbs\"); gate + up (N = 2 x 18944) also as the fused\n"
         "gate / up / SwiGLU pass of the decode step (vreflect-gemv-swiglu).\n"
         "--attention-tiles: time each listed tile variant of the tensor-core attention (head dim 128; 'all': every\n"
         "one): attention_fwd the forward variants, attention_bwd the backward ones; impl \"vreflect-tc/<tile>\" and\n"
         "\"tile\" in the JSON. Without it the variant VREFLECT_ATTENTION_TILE_FWD / _BWD picks (auto: the first of the\n"
         "tile preference that fits the GPU's shared memory, today 64x64w4; device.attention_tiles names it).\n"
         "The Hopper wgmma kernels' variants are \"wgmma:<variant>\" (forward wgmma:128x64wg2, ..., backward\n"
         "wgmma:128x64wg2, wgmma:64x64wg1; in 'all'): impl \"vreflect-wgmma/<variant>\", an error entry on a GPU\n"
         "without them (not sm_90, no sm_90a code, self-check).\n"
         "elementwise (or the names: swiglu_fwd, swiglu_bwd, rmsnorm_fwd, rmsnorm_bwd, rmsnorm_to_bf16, rope_fwd,\n"
         "rope_bwd, convert_f32_bf16, convert_bf16_f32, cross_entropy, gelu_fwd, gelu_bwd, scatter_rows, kv_append,\n"
         "adamw): the memory-bound kernels at the 7B training shapes (4096 tokens; --quick: only those) and decode\n"
         "ones, as the 16-byte path (impl vreflect-vec16) and the scalar kernels (vreflect-scalar, what\n"
         "VREFLECT_ELEMENTWISE=scalar runs); the figure is GB/s of the bytes each must move (\"gbs\").\n"
         "--dry-run: check the arguments and print the planned cases without touching the GPU.\n";
}

Options parse_options(int argc, char** argv) {
  Options o;
  bool reps_set = false;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail("vreflect_cuda_bench: ", a, " needs a value");
      return argv[++i];
    };
    if (a == "--json") o.json = true;
    else if (a == "--quick") o.quick = true;
    else if (a == "--dry-run") o.dry_run = true;
    else if (a == "--help" || a == "-h") o.help = true;
    else if (a == "--reps") o.reps = int(parse_int(a, value(), 1, 1000)), reps_set = true;
    else if (a == "--warmup") o.warmup = int(parse_int(a, value(), 0, 100));
    else if (a == "--max-case-seconds") {
      const std::string v = value();
      char* end = nullptr;
      o.max_case_seconds = std::strtod(v.c_str(), &end);
      if (v.empty() || *end || !(o.max_case_seconds > 0))
        fail("vreflect_cuda_bench: --max-case-seconds wants a positive number, got '", v, "'");
    } else if (a == "--kernels") o.kernels = parse_kernels(a, value());
    else if (a == "--impl") o.impls = parse_names(a, value(), kImpls);
    else if (a == "--seqs") o.seqs = parse_list(a, value(), 1, 1 << 20);
    else if (a == "--keys") o.keys = parse_list(a, value(), 1, 1 << 20);
    else if (a == "--gemm-m") o.gemm_m = parse_list(a, value(), 1, 1 << 20);
    else if (a == "--gemv-m") o.gemv_m = parse_list(a, value(), 1, 8);
    else if (a == "--decode-keys") o.decode_keys = parse_list(a, value(), 1, 1 << 20);
    else if (a == "--attention-tiles") o.attention_tiles = parse_tiles(a, value());
    else fail("vreflect_cuda_bench: unknown option '", a, "' (see --help)");
  }
  // The memory-bound kernels only when asked for: `vreflect bench kernels` parses the default run, whose schema
  // knows the kernels above.
  if (o.kernels.empty()) o.kernels = kKernels;
  if (o.impls.empty()) o.impls = kImpls;
  if (o.seqs.empty()) o.seqs = o.quick ? std::vector<int64_t>{1024, 4096} : std::vector<int64_t>{512, 1024, 2048, 4096, 8192, 16384};
  if (o.keys.empty()) o.keys = o.quick ? std::vector<int64_t>{4096} : std::vector<int64_t>{1024, 4096, 16384};
  if (o.decode_keys.empty())
    o.decode_keys = o.quick ? std::vector<int64_t>{16384} : std::vector<int64_t>{512, 1024, 4096, 16384, 65536};
  if (o.gemm_m.empty()) o.gemm_m = o.quick ? std::vector<int64_t>{4096} : std::vector<int64_t>{512, 1024, 2048, 4096, 8192, 16384};
  if (o.gemv_m.empty()) o.gemv_m = o.quick ? std::vector<int64_t>{1} : std::vector<int64_t>{1, 4, 8};
  if (o.quick && !reps_set) o.reps = 3, o.warmup = std::min(o.warmup, 1);
  return o;
}

int64_t Case::get(const std::string& key) const {
  for (const auto& kv : shape)
    if (kv.first == key) return kv.second;
  fail("bench case ", kernel, " has no shape key ", key);
}

std::vector<Case> plan_cases(const Options& o) {
  std::vector<Case> r;
  auto want = [&](const char* k) { return std::find(o.kernels.begin(), o.kernels.end(), k) != o.kernels.end(); };
  for (const char* k : {"attention_fwd", "attention_bwd"}) {
    if (!want(k)) continue;
    const bool bwd = std::string(k) == "attention_bwd";
    const double mult = bwd ? 2.5 : 1.0;  // bwd = 2.5 x fwd (FlashAttention)
    // The listed tile variants this kernel has (none listed, or none of its own: the environment's choice).
    std::vector<std::string> tiles;
    for (const std::string& t : o.attention_tiles)
      if (has(cuda::attention_tc_tiles(bwd), t) || has(wgmma_tiles(bwd), t)) tiles.push_back(t);
    if (tiles.empty()) tiles.push_back("");
    for (int64_t s : o.seqs)
      for (int causal : {0, 1})
        for (const std::string& tile : tiles) {
          Case c;
          c.kernel = k, c.impl = "vreflect-kernel", c.causal = causal, c.tile = tile;
          c.shape = {{"batch", 1}, {"seq_q", s}, {"seq_k", s}, {"heads_q", kHeadsQ}, {"heads_kv", kHeadsKV},
                     {"head_dim", kHeadDim}};
          c.flop = mult * 4.0 * double(s) * double(s) * kHeadsQ * kHeadDim / (causal ? 2.0 : 1.0);
          r.push_back(c);
        }
  }
  if (want("attention_decode"))
    for (int64_t n : o.decode_keys)
      for (const std::string& impl : kDecodeImpls) {
        Case c;
        c.kernel = "attention_decode", c.impl = impl, c.causal = 1;
        c.shape = {{"batch", 1}, {"seq_q", 1}, {"seq_k", n}, {"heads_q", kHeadsQ}, {"heads_kv", kHeadsKV},
                   {"head_dim", kHeadDim}};
        c.flop = 4.0 * double(n) * kHeadsQ * kHeadDim;
        c.bytes = 2.0 * double(n) * kHeadsKV * kHeadDim * 2;  // K and V, bf16; q / out are 7 KiB
        r.push_back(c);
      }
  for (const char* k : {"cross_attention_fwd", "cross_attention_bwd"}) {
    if (!want(k)) continue;
    const double mult = std::string(k) == "cross_attention_bwd" ? 2.5 : 1.0;
    for (int64_t n : o.keys) {
      Case c;
      c.kernel = k, c.impl = "vreflect-kernel";
      c.shape = {{"items", 1}, {"queries", kCrossQueries}, {"keys", n}, {"heads", kCrossHeads},
                 {"head_dim", kCrossHeadDim}};
      c.flop = mult * 4.0 * kCrossQueries * double(n) * kCrossHeads * kCrossHeadDim;
      r.push_back(c);
    }
  }
  // gemm: the 7B's Linears at --gemm-m rows, then the decode Linears + LM head at --gemv-m rows (<= 8), whose
  // figure is also GB/s of weights read (they are bandwidth-bound).
  auto gemm_cases = [&](const std::vector<std::pair<int64_t, int64_t>>& shapes, const std::vector<int64_t>& ms,
                        bool decode) {
    for (const auto& kn : shapes)
      for (int64_t m : ms)
        for (const std::string& impl : o.impls) {
          if ((impl == "vreflect-gemv" || impl == "vreflect-gemv-swiglu") && m > 8) continue;  // at most 8 rows
          if (impl == "vreflect-gemv-swiglu" && (!decode || kn.second != kGateUpN)) continue;
          Case c;
          c.kernel = "gemm", c.impl = impl;
          c.shape = {{"M", m}, {"N", kn.second}, {"K", kn.first}};
          c.flop = 2.0 * double(m) * double(kn.second) * double(kn.first);
          if (decode) c.bytes = 2.0 * double(kn.second) * double(kn.first);  // the bf16 weights, read once
          r.push_back(c);
        }
  };
  if (want("gemm")) {
    gemm_cases(kGemmKN, o.gemm_m, false);
    gemm_cases(kDecodeKN, o.gemv_m, true);
  }
  plan_elementwise(o, r);
  return r;
}

}  // namespace vr::bench
