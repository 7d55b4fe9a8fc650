// The binding modules of the addon and the helpers they share for argument checking.
#pragma once
#include <napi.h>

#include <string>

namespace vr::addon {

void InitInfo(Napi::Env env, Napi::Object exports);     // info_binding.cc: build/backends/CPU facts, threads
void InitDevice(Napi::Env env, Napi::Object exports);   // device_binding.cc: CUDA driver / runtime / build probe
void InitImage(Napi::Env env, Napi::Object exports);    // image_binding.cc: Pillow-exact resize, patchify
void InitModel(Napi::Env env, Napi::Object exports);    // model_binding.cc: Model / Session objects
void InitBench(Napi::Env env, Napi::Object exports);    // bench_binding.cc: read-bandwidth and GEMM probes
void InitTrainer(Napi::Env env, Napi::Object exports);  // trainer_binding.cc: createTrainer / Trainer

// Throw a JS TypeError/Error and return an empty value (NAPI_DISABLE_CPP_EXCEPTIONS style).
inline Napi::Value ThrowType(Napi::Env env, const std::string& msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}
inline Napi::Value ThrowError(Napi::Env env, const std::string& msg) {
  Napi::Error::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace vr::addon
