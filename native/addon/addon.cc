// Addon entry: registers each binding module. Binding modules live in native/addon/*_binding.cc and
// export `void Init<Name>(Napi::Env, Napi::Object)`; they only check arguments and convert types.
#include <napi.h>

#include "addon/bindings.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  vr::addon::InitInfo(env, exports);
  vr::addon::InitDevice(env, exports);
  vr::addon::InitImage(env, exports);
  vr::addon::InitModel(env, exports);
  vr::addon::InitTrainer(env, exports);
  vr::addon::InitBench(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(vreflect_native, Init)
