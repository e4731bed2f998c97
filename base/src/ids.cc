#include "faas/base/ids.h"

#include <sys/random.h>

#include <cstdint>
#include <random>

#include "faas/base/time.h"

namespace faas {

std::string NewInvocationId() {
  // Crockford base32, lower case: sortable as strings, no ambiguous letters.
  static constexpr char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
  thread_local std::mt19937_64 rng = [] {
    uint64_t seed = 0;
    if (::getrandom(&seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed)) {
      seed = static_cast<uint64_t>(UnixMillisNow());
    }
    return std::mt19937_64(seed);
  }();
  auto ms = static_cast<uint64_t>(UnixMillisNow());
  std::string id(26, '0');
  for (int i = 9; i >= 0; --i) {  // 10 chars x 5 bits = 50 bits of time
    id[static_cast<std::size_t>(i)] = kAlphabet[ms & 31];
    ms >>= 5;
  }
  uint64_t r1 = rng();
  uint64_t r2 = rng();
  for (std::size_t i = 10; i < 26; ++i) {  // 16 chars x 5 bits = 80 random bits
    uint64_t& src = i < 22 ? r1 : r2;
    id[i] = kAlphabet[src & 31];
    src >>= 5;
  }
  return id;
}

}  // namespace faas
