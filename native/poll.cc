// Placeholder: the poll family is filled in by its own change.
#include "families.h"

namespace rawio {
void InitPoll(Napi::Env, Napi::Object) {}
}  // namespace rawio
