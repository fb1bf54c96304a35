// Placeholder: the uring family is filled in by its own change.
#include "families.h"

namespace rawio {
void InitUring(Napi::Env, Napi::Object) {}
}  // namespace rawio
