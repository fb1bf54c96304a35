// Placeholder: the loadgen family is filled in by its own change.
#include "families.h"

namespace rawio {
void InitLoadgen(Napi::Env, Napi::Object) {}
}  // namespace rawio
