// Placeholder: the select family is filled in by its own change.
#include "families.h"

namespace rawio {
void InitSelect(Napi::Env, Napi::Object) {}
}  // namespace rawio
