// vreflect_cuda_bench: times vreflect's CUDA kernels and cuBLASLt on the Qwen2.5-VL-7B shapes and prints one
// JSON object (--json) or a table. The JSON schema is shared with scripts_bench/torch_kernels.py (see
// native/cuda/gemm/README.md):
//   {"device":{"name","cc","memory_bytes","driver","smem_optin_bytes","attention_tiles":{"fwd","bwd"}}, "date",
//    "cublaslt":{"found","path","version","error"},
//    "results":[{"kernel","shape":{...},"dtype":"bf16","causal"?,"ms","tflops","impl","reps","tile"?,"gbs"?,"error"?}]}
// tile (attention on tensor cores): the tile variant that ran (--attention-tiles; impl "vreflect-tc/<tile>" unless
// it is the first of the tile preference), for the Hopper forward "wgmma:<variant>" (impl
// "vreflect-wgmma[/<variant>]"). device.attention_tiles: the mma.sync variants VREFLECT_ATTENTION_TILE_FWD / _BWD
// run on this GPU (auto: the first of the preference whose shared memory fits smem_optin_bytes).
// gbs (attention_decode, the decode gemm cases, the elementwise kernels): GB/s of the bytes the case must move (the
// K/V cache, the weights, the tensors), to hold against the HBM roofline; the table prints it too.
// ms / tflops are null for a case that did not run (its "error" says why). Runs on a GPU machine without Node.
#include <cmath>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string>

#include "core/error.h"
#include "core/json_string.h"
#include "cuda/bench/bench_options.h"
#include "cuda/bench/model/bench_json.h"  // utc_now
#include "cuda/bench/bench_runner.h"
#include "cuda/gemm/cublaslt_loader.h"
#include "cuda/kernels/cuda_kernels.h"

namespace vr::bench {
namespace {

std::string jnum(double x, const char* fmt) {
  if (!std::isfinite(x) || x < 0) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, x);
  return buf;
}

std::string shape_json(const Case& c) {
  std::string r = "{";
  for (const auto& kv : c.shape) r += (r.size() > 1 ? "," : "") + json_string(kv.first) + ":" + std::to_string(kv.second);
  return r + "}";
}

std::string shape_text(const Case& c) {
  std::string r;
  for (const auto& kv : c.shape) r += (r.empty() ? "" : " ") + kv.first + "=" + std::to_string(kv.second);
  return r;
}

std::string result_json(const Case& c, const Measurement& m) {
  const double tflops = m.ms > 0 ? c.flop / (m.ms * 1e-3) / 1e12 : -1;  // 0: a bandwidth-only case (see gbs)
  std::string r = "{\"kernel\":" + json_string(c.kernel) + ",\"shape\":" + shape_json(c) + ",\"dtype\":" + json_string(c.dtype);
  if (c.causal >= 0) r += std::string(",\"causal\":") + (c.causal ? "true" : "false");
  r += ",\"ms\":" + jnum(m.ms, "%.4g") + ",\"tflops\":" + jnum(tflops, "%.4g") + ",\"impl\":" + json_string(m.impl.empty() ? c.impl : m.impl) +
       ",\"reps\":" + std::to_string(m.reps);
  const std::string tile = m.tile.empty() ? c.tile : m.tile;
  if (!tile.empty()) r += ",\"tile\":" + json_string(tile);
  if (c.bytes > 0) r += ",\"gbs\":" + jnum(m.ms > 0 ? c.bytes / (m.ms * 1e-3) / 1e9 : -1, "%.4g");
  if (!m.error.empty()) r += ",\"error\":" + json_string(m.error);
  return r + "}";
}

int run(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  if (o.help) {
    std::fputs(usage(), stdout);
    return 0;
  }
  const std::vector<Case> cases = plan_cases(o);
  const cuda::CublasLtInfo& lt = cuda::cublaslt_info();
  std::string device_json = "null";
  std::optional<Runner> runner;  // none in a dry run
  if (!o.dry_run) {
    runner.emplace();
    const DeviceInfo& d = runner->device();
    const auto tile = [](bool bwd) -> std::string {  // a bad VREFLECT_ATTENTION_TILE_* fails its cases, not the run
      try {
        return cuda::attention_tc_tile(bwd);
      } catch (const std::exception& e) {
        return std::string("error: ") + e.what();
      }
    };
    const std::string fwd_tile = tile(false), bwd_tile = tile(true);
    device_json = "{\"name\":" + json_string(d.name) + ",\"cc\":" + json_string(d.cc) +
                  ",\"memory_bytes\":" + std::to_string(d.memory_bytes) + ",\"driver\":" + json_string(d.driver) +
                  ",\"smem_optin_bytes\":" + std::to_string(d.smem_optin_bytes) + ",\"attention_tiles\":{\"fwd\":" +
                  json_string(fwd_tile) + ",\"bwd\":" + json_string(bwd_tile) + "}}";
    if (!o.json)
      std::printf("%s (sm %s, %.1f GiB, %.0f KiB shared memory per block, driver %s); attention tiles fwd %s bwd %s; "
                  "cuBLASLt: %s\n", d.name.c_str(), d.cc.c_str(), double(d.memory_bytes) / double(1ull << 30),
                  double(d.smem_optin_bytes) / 1024, d.driver.c_str(), fwd_tile.c_str(), bwd_tile.c_str(),
                  lt.found ? (lt.version + " " + lt.path).c_str() : lt.error.c_str());
  }
  if (!o.json) std::printf("%-20s %-24s %-62s %7s %11s %9s\n", "kernel", "impl", "shape", "causal", "ms", "TFLOP/s");
  std::string results;
  for (const Case& c : cases) {
    Measurement m;
    if (runner) m = runner->run(c, o);
    if (o.json) {
      results += (results.empty() ? "" : ",\n  ") + result_json(c, m);
    } else {
      const double tflops = m.ms > 0 ? c.flop / (m.ms * 1e-3) / 1e12 : -1;
      const std::string impl = !m.impl.empty() ? m.impl : c.tile.empty() ? c.impl : c.impl + "/" + c.tile;
      // Bandwidth-bound cases (bytes > 0) also print GB/s of the bytes they must move.
      const std::string gbs = c.bytes > 0 && m.ms > 0 ? "  " + jnum(c.bytes / (m.ms * 1e-3) / 1e9, "%.0f") + " GB/s" : "";
      std::printf("%-20s %-24s %-62s %7s %11s %9s%s%s\n", c.kernel.c_str(), impl.c_str(),
                  shape_text(c).c_str(),
                  c.causal < 0 ? "" : c.causal ? "yes" : "no", o.dry_run ? "planned" : jnum(m.ms, "%.4g").c_str(),
                  c.flop > 0 ? jnum(tflops, "%.1f").c_str() : "", gbs.c_str(), m.error.empty() ? "" : ("  " + m.error).c_str());
      std::fflush(stdout);
    }
  }
  if (o.json)
    std::printf("{\"device\":%s,\"date\":%s,%s\"cublaslt\":%s,\n \"results\":[\n  %s]}\n", device_json.c_str(),
                json_string(utc_now()).c_str(), o.dry_run ? "\"dry_run\":true," : "", cuda::cublaslt_info_json(lt).c_str(),
                results.c_str());
  return 0;
}

}  // namespace
}  // namespace vr::bench

int main(int argc, char** argv) {
  try {
    return vr::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}
