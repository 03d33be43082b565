// Source compatibility for code written against the TENT headers: `mooncake::tent::X`
// names the same types as `ferry::X`.
#pragma once

#include "ferry/transfer_engine.h"

namespace mooncake {
namespace tent = ::ferry;
}  // namespace mooncake
