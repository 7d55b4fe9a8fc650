// info(): what was built and what this machine has; setThreads(n).
#include "addon/bindings.h"
#include "core/dtype.h"
#include "core/parallel.h"
#include "ops/linear.h"
#ifdef VREFLECT_HAVE_CUDA
#include "cuda/gemm/cublaslt_loader.h"
#endif

namespace vr::addon {

static Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  const CpuFeatures& f = cpu_features();
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("model", f.model);
  cpu.Set("avx2", f.avx2);
  cpu.Set("avx512f", f.avx512f);
  cpu.Set("avx512_bf16", f.avx512_bf16);
  cpu.Set("amx_bf16", f.amx_bf16);
  cpu.Set("threads", num_threads());
  cpu.Set("gemm_f32", linear_backend_name(DType::F32));
  cpu.Set("gemm_bf16", linear_backend_name(DType::BF16));
  o.Set("cpu", cpu);
#ifdef VREFLECT_HAVE_DNNL
  o.Set("onednn", true);
#else
  o.Set("onednn", false);
#endif
#ifdef VREFLECT_HAVE_CUDA
  o.Set("cudaBuilt", true);
#else
  o.Set("cudaBuilt", false);
#endif
  return o;
}

static Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return ThrowType(env, "setThreads(n): n must be a number");
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n < 1 || n > 4096) return ThrowType(env, "setThreads(n): n must be between 1 and 4096");
  set_num_threads(n);
  return env.Undefined();
}

#ifdef VREFLECT_HAVE_CUDA
// cublasLtStatus(): {found, path, version, error} of the run-time cuBLASLt search (native/cuda/gemm); searched once
// per process, so doctor can call it without a GPU.
static Napi::Value CublasLtStatus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const vr::cuda::CublasLtInfo& s = vr::cuda::cublaslt_info();
  Napi::Object o = Napi::Object::New(env);
  o.Set("found", s.found);
  if (s.found) {
    o.Set("path", s.path);
    o.Set("version", s.version);
  } else {
    o.Set("error", s.error);
  }
  return o;
}
#endif

void InitInfo(Napi::Env env, Napi::Object exports) {
#ifdef VREFLECT_HAVE_CUDA
  exports.Set("cublasLtStatus", Napi::Function::New(env, CublasLtStatus));
#endif
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
}

}  // namespace vr::addon
