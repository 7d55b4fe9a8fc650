// Placeholder until the module lands; keeps the addon linkable.
#include "addon/bindings.h"

namespace vr::addon {
void InitOpsTest(Napi::Env, Napi::Object) {}
}  // namespace vr::addon
