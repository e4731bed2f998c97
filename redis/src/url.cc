// redis://HOST:PORT[/DB] (faas/redis/client.h).
#include <charconv>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

#include "faas/redis/client.h"

namespace faas::redis {
namespace {

bool AllDigits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// `"value"` for messages; long values are cut.
std::string Quoted(std::string_view v) {
  constexpr std::size_t kShown = 80;
  std::string out = "\"";
  out.append(v.substr(0, kShown));
  if (v.size() > kShown) {
    out += "…";
  }
  out += '"';
  return out;
}

}  // namespace

std::string RedisUrlProblem(std::string_view source, RedisAddress& addr) {
  constexpr std::string_view kScheme = "redis://";
  constexpr std::string_view kForms = "must be redis://HOST:PORT[/DB] or embedded";
  if (!source.starts_with(kScheme)) {
    return std::string(kForms);
  }
  std::string_view rest = source.substr(kScheme.size());
  if (std::size_t slash = rest.find('/'); slash != std::string_view::npos) {
    std::string_view db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!AllDigits(db) || db.size() > 9) {
      return "has DB " + Quoted(db) + ", which must be a small non-negative integer";
    }
    std::from_chars(db.data(), db.data() + db.size(), addr.db);
  }
  std::string_view host;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    std::size_t close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return std::string(kForms);
    }
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
    if (host.empty() ||
        host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos) {
      return std::string(kForms);
    }
  } else {
    std::size_t colon = rest.find(':');
    if (colon == std::string_view::npos) {
      return "needs a port: redis://HOST:PORT[/DB]";
    }
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (host.empty() ||
        host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "0123456789.-_") != std::string_view::npos) {
      return std::string(kForms);
    }
  }
  int port_number = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (!AllDigits(port) || ec != std::errc() || ptr != port.data() + port.size() ||
      port_number < 1 || port_number > 65535) {
    return "has port " + Quoted(port) + ", which must be 1..65535";
  }
  addr.host = std::string(host);
  addr.port = port_number;
  return "";
}

Result<RedisAddress> ParseRedisUrl(std::string_view url) {
  RedisAddress addr;
  if (std::string why = RedisUrlProblem(url, addr); !why.empty()) {
    return InvalidArgumentError(Quoted(url) + " " + why);
  }
  return addr;
}

}  // namespace faas::redis
