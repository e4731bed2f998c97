#include "faas/gateway/trace_context.h"

#include <sys/random.h>

#include <cstdint>
#include <random>
#include <string_view>

#include "faas/base/time.h"

namespace faas::gateway {
namespace {

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

// Per-thread generator for span and trace ids, seeded from getrandom(2).
std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng = [] {
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed)) {
      seed = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
    }
    return std::mt19937_64(seed);
  }();
  return rng;
}

// 16 lower-case hex digits, most significant first.
void AppendHex64(std::string& out, uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  char buf[16];
  for (int i = 15; i >= 0; --i) {
    buf[i] = kHex[v & 15];
    v >>= 4;
  }
  out.append(buf, sizeof buf);
}

}  // namespace

std::string ContinueTrace(const std::string* incoming, std::string* trace_id) {
  // version "00" - trace-id (32 hex, not all 0) - parent-id (16 hex, not all 0) - flags (2 hex)
  std::string out;
  out.reserve(55);
  if (incoming != nullptr && incoming->size() == 55 && incoming->starts_with("00-") &&
      (*incoming)[35] == '-' && (*incoming)[52] == '-') {
    std::string_view in = *incoming;
    std::string_view tid = in.substr(3, 32);
    std::string_view pid = in.substr(36, 16);
    std::string_view flags = in.substr(53, 2);
    // All-zero trace and parent ids are invalid (W3C trace context §3.2.2).
    if (IsLowerHex(tid) && IsLowerHex(pid) && IsLowerHex(flags) &&
        tid.find_first_not_of('0') != tid.npos && pid.find_first_not_of('0') != pid.npos) {
      out.append("00-").append(tid).append("-");
      AppendHex64(out, Rng()() | 1);
      out.append("-").append(flags);
      trace_id->assign(tid);
      return out;
    }
  }
  out = "00-";
  AppendHex64(out, Rng()());
  AppendHex64(out, Rng()() | 1);
  trace_id->assign(out, 3, 32);
  out += '-';
  AppendHex64(out, Rng()() | 1);
  out += "-00";
  return out;
}

}  // namespace faas::gateway
