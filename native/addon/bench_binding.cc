// benchReadBandwidth({bytes?, repeats?, threads?}) and benchGemm({m, n, k, dtype, seconds?, minRepeats?}):
// the machine probes of `vreflect bench infer` (native/bench/*.h). benchAttention({lq, lk, items?, heads,
// kvHeads, headDim, causal?, backward?, seconds?, minRepeats?}): the CPU side of `vreflect bench kernels`.
// Synchronous: the benchmark does nothing else while they run, and a probe must not share the cores with other
// work anyway.
#include <cstdio>
#include <new>
#include <string>

#include "addon/bindings.h"
#include "bench/attention_probe.h"
#include "bench/gemm_probe.h"
#include "bench/read_bandwidth.h"
#include "core/error.h"
#include "core/parallel.h"

namespace vr::addon {

namespace {

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

// An optional finite number in [lo, hi]; `where` names the argument in the error.
bool opt_number(Napi::Env env, const Napi::Object& o, const char* key, double lo, double hi, double* out, const char* where) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return true;
  if (!v.IsNumber()) { ThrowType(env, std::string(where) + ": '" + key + "' must be a number"); return false; }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi)) {
    ThrowType(env, std::string(where) + ": '" + key + "' must be in [" + fmt(lo) + ", " + fmt(hi) + "], got " + fmt(d));
    return false;
  }
  *out = d;
  return true;
}

Napi::Value ReadBandwidth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = info.Length() > 0 && info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
  double bytes = double(1ull << 30), repeats = 5, threads = num_threads();
  if (!opt_number(env, o, "bytes", double(64ull << 20), double(64ull << 30), &bytes, "benchReadBandwidth") ||
      !opt_number(env, o, "repeats", 1, 1000, &repeats, "benchReadBandwidth") ||
      !opt_number(env, o, "threads", 1, 1024, &threads, "benchReadBandwidth"))
    return env.Undefined();
  try {
    bench::BandwidthResult r = bench::measure_read_bandwidth(uint64_t(bytes), int(repeats), int(threads));
    Napi::Object res = Napi::Object::New(env);
    res.Set("bytes", double(r.bytes));
    res.Set("threads", r.threads);
    res.Set("kernel", r.kernel);
    res.Set("bestGBps", r.best_gbps);
    res.Set("medianGBps", r.median_gbps);
    Napi::Array runs = Napi::Array::New(env, r.runs_gbps.size());
    for (size_t i = 0; i < r.runs_gbps.size(); i++) runs.Set(uint32_t(i), r.runs_gbps[i]);
    res.Set("runsGBps", runs);
    return res;
  } catch (const std::bad_alloc&) {
    return ThrowError(env, "benchReadBandwidth: out of memory");
  } catch (const std::exception& e) {
    return ThrowError(env, e.what());
  }
}

Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) return ThrowType(env, "benchGemm({m, n, k, dtype}): an options object is required");
  Napi::Object o = info[0].As<Napi::Object>();
  double m = 0, n = 0, k = 0, seconds = 1, minRepeats = 3;
  for (const char* key : {"m", "n", "k"}) {
    if (!o.Get(key).IsNumber()) return ThrowType(env, std::string("benchGemm: '") + key + "' must be a number");
  }
  if (!opt_number(env, o, "m", 1, 1 << 20, &m, "benchGemm") || !opt_number(env, o, "n", 1, 1 << 20, &n, "benchGemm") ||
      !opt_number(env, o, "k", 1, 1 << 20, &k, "benchGemm") || !opt_number(env, o, "seconds", 0, 600, &seconds, "benchGemm") ||
      !opt_number(env, o, "minRepeats", 1, 100000, &minRepeats, "benchGemm"))
    return env.Undefined();
  Napi::Value dv = o.Get("dtype");
  std::string dt = dv.IsString() ? dv.As<Napi::String>().Utf8Value() : "";
  if (dt != "bf16" && dt != "fp32") return ThrowType(env, "benchGemm: 'dtype' must be \"bf16\" or \"fp32\"");
  try {
    bench::GemmResult r = bench::measure_gemm(int64_t(m), int64_t(n), int64_t(k), dt == "bf16" ? DType::BF16 : DType::F32,
                                              seconds, int(minRepeats));
    Napi::Object res = Napi::Object::New(env);
    res.Set("m", m);
    res.Set("n", n);
    res.Set("k", k);
    res.Set("dtype", dt);
    res.Set("backend", r.backend);
    res.Set("bestMs", r.best_ms);
    res.Set("medianMs", r.median_ms);
    res.Set("gflops", r.gflops);
    res.Set("repeats", r.repeats);
    return res;
  } catch (const std::bad_alloc&) {
    return ThrowError(env, "benchGemm: out of memory");
  } catch (const std::exception& e) {
    return ThrowError(env, e.what());
  }
}

Napi::Value Attention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject())
    return ThrowType(env, "benchAttention({lq, lk, heads, kvHeads, headDim}): an options object is required");
  Napi::Object o = info[0].As<Napi::Object>();
  for (const char* key : {"lq", "lk", "heads", "kvHeads", "headDim"})
    if (!o.Get(key).IsNumber()) return ThrowType(env, std::string("benchAttention: '") + key + "' must be a number");
  double lq = 0, lk = 0, items = 1, heads = 0, kv = 0, hd = 0, seconds = 1, minRepeats = 1;
  if (!opt_number(env, o, "lq", 1, 1 << 20, &lq, "benchAttention") || !opt_number(env, o, "lk", 1, 1 << 20, &lk, "benchAttention") ||
      !opt_number(env, o, "items", 1, 1 << 16, &items, "benchAttention") ||
      !opt_number(env, o, "heads", 1, 256, &heads, "benchAttention") || !opt_number(env, o, "kvHeads", 1, 256, &kv, "benchAttention") ||
      !opt_number(env, o, "headDim", 1, 512, &hd, "benchAttention") || !opt_number(env, o, "seconds", 0, 600, &seconds, "benchAttention") ||
      !opt_number(env, o, "minRepeats", 1, 10000, &minRepeats, "benchAttention"))
    return env.Undefined();
  bench::AttentionShape s;
  s.lq = int64_t(lq);
  s.lk = int64_t(lk);
  s.items = int(items);
  s.heads = int(heads);
  s.kv_heads = int(kv);
  s.head_dim = int(hd);
  s.causal = o.Get("causal").ToBoolean().Value();
  s.backward = o.Get("backward").ToBoolean().Value();
  try {
    bench::AttentionResult r = bench::measure_attention(s, seconds, int(minRepeats));
    Napi::Object res = Napi::Object::New(env);
    res.Set("bestMs", r.best_ms);
    res.Set("medianMs", r.median_ms);
    res.Set("flop", r.flop);
    res.Set("gflops", r.gflops);
    res.Set("repeats", r.repeats);
    return res;
  } catch (const std::bad_alloc&) {
    return ThrowError(env, "benchAttention: out of memory");
  } catch (const std::exception& e) {
    return ThrowError(env, e.what());
  }
}

}  // namespace

void InitBench(Napi::Env env, Napi::Object exports) {
  exports.Set("benchReadBandwidth", Napi::Function::New(env, ReadBandwidth));
  exports.Set("benchGemm", Napi::Function::New(env, Gemm));
  exports.Set("benchAttention", Napi::Function::New(env, Attention));
}

}  // namespace vr::addon
