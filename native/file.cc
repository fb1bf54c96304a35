// Placeholder: the file family is filled in by its own change.
#include "families.h"

namespace rawio {
void InitFile(Napi::Env, Napi::Object) {}
}  // namespace rawio
