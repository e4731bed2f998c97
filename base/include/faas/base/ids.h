// Invocation ids: 26 lowercase chars, time-sortable (48-bit Unix ms + 80 random bits, base32).
#pragma once

#include <string>

namespace faas {

// Thread-safe. Uses a per-thread generator seeded from getrandom(2).
std::string NewInvocationId();

}  // namespace faas
