// Placeholder: the keyspace family is filled in by its own change.
#include "families.h"

namespace rawio {
void InitKeyspace(Napi::Env, Napi::Object) {}
}  // namespace rawio
