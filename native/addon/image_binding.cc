// Placeholder until the module lands; keeps the addon linkable.
#include "addon/bindings.h"

namespace vr::addon {
void InitImage(Napi::Env, Napi::Object) {}
}  // namespace vr::addon
