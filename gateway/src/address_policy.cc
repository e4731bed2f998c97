#include "faas/gateway/address_policy.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace faas::gateway {
namespace {

// ::ffff:0:0/96, the IPv4-mapped prefix every IPv4 address is kept under.
constexpr std::array<uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

IpAddress FromV4(const uint8_t* four) {
  IpAddress a;
  std::memcpy(a.bytes.data(), kMappedPrefix.data(), kMappedPrefix.size());
  std::memcpy(a.bytes.data() + 12, four, 4);
  return a;
}

// What faasd must not reach on a caller's say-so (IANA special-purpose registries, RFC 6890).
// Besides these: the host's own addresses, asked at each check.
struct BlockedRow {
  const char* what;
  const char* cidr;
};
constexpr BlockedRow kBlocked[] = {
    {"unspecified (\"this host\")", "0.0.0.0/8"},
    {"private", "10.0.0.0/8"},
    {"shared address space (CGNAT)", "100.64.0.0/10"},
    {"loopback", "127.0.0.0/8"},
    {"link-local (cloud metadata)", "169.254.0.0/16"},
    {"private", "172.16.0.0/12"},
    {"IETF protocol assignments", "192.0.0.0/24"},
    {"private", "192.168.0.0/16"},
    {"benchmarking", "198.18.0.0/15"},
    {"multicast", "224.0.0.0/4"},
    {"reserved and broadcast", "240.0.0.0/4"},
    {"unspecified", "::/128"},
    {"loopback", "::1/128"},
    {"IPv4-compatible (deprecated)", "::/96"},
    {"NAT64 local use", "64:ff9b:1::/48"},
    {"unique local (private)", "fc00::/7"},
    {"link-local", "fe80::/10"},
    {"site-local (deprecated)", "fec0::/10"},
    {"multicast", "ff00::/8"},
};

struct ParsedRow {
  std::string what;
  Cidr range;
};

const std::vector<ParsedRow>& BlockedTable() {
  static const std::vector<ParsedRow> table = [] {
    std::vector<ParsedRow> out;
    for (const BlockedRow& row : kBlocked) {
      Result<Cidr> c = ParseCidr(row.cidr);
      // The table is ours and its unit test parses every row: a bad row is our bug.
      if (c.ok()) {
        out.push_back({std::string(row.what) + " " + row.cidr, *c});
      }
    }
    return out;
  }();
  return table;
}

// IPv6 forms that carry an IPv4 address a translator or relay would reach: NAT64
// (64:ff9b::/96, RFC 6052) and 6to4 (2002::/16, RFC 3056).
std::optional<IpAddress> EmbeddedV4(const IpAddress& a) {
  static const Cidr nat64 = *ParseCidr("64:ff9b::/96");
  static const Cidr six_to_four = *ParseCidr("2002::/16");
  if (nat64.Contains(a)) {
    return FromV4(a.bytes.data() + 12);
  }
  if (six_to_four.Contains(a)) {
    return FromV4(a.bytes.data() + 2);
  }
  return std::nullopt;
}

}  // namespace

std::optional<IpAddress> IpAddress::FromSockaddr(const sockaddr* sa) {
  if (sa == nullptr) {
    return std::nullopt;
  }
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    return FromV4(reinterpret_cast<const uint8_t*>(&in->sin_addr.s_addr));
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    IpAddress a;
    std::memcpy(a.bytes.data(), in6->sin6_addr.s6_addr, 16);
    return a;
  }
  return std::nullopt;
}

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  const std::string s(text);
  uint8_t buf[16];
  if (::inet_pton(AF_INET, s.c_str(), buf) == 1) {
    return FromV4(buf);
  }
  if (::inet_pton(AF_INET6, s.c_str(), buf) == 1) {
    IpAddress a;
    std::memcpy(a.bytes.data(), buf, 16);
    return a;
  }
  return std::nullopt;
}

bool IpAddress::IsV4() const {
  return std::memcmp(bytes.data(), kMappedPrefix.data(), kMappedPrefix.size()) == 0;
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  const bool v4 = IsV4();
  if (::inet_ntop(v4 ? AF_INET : AF_INET6, bytes.data() + (v4 ? 12 : 0), buf, sizeof buf) ==
      nullptr) {
    return "?";
  }
  return buf;
}

bool Cidr::Contains(const IpAddress& addr) const {
  int bits = prefix;
  for (std::size_t i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    const auto mask = static_cast<uint8_t>(bits >= 8 ? 0xff : 0xff << (8 - bits));
    if ((addr.bytes[i] & mask) != base.bytes[i]) {
      return false;
    }
  }
  return true;
}

std::string Cidr::ToString() const {
  const bool v4 = base.IsV4() && prefix >= 96;
  return base.ToString() + "/" + std::to_string(v4 ? prefix - 96 : prefix);
}

Result<Cidr> ParseCidr(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return InvalidArgumentError("\"" + std::string(text) + "\" is not a CIDR range (" + why +
                                "; e.g. 10.0.0.0/8 or fd00::/8)");
  };
  const std::size_t slash = text.find('/');
  std::optional<IpAddress> base = IpAddress::Parse(text.substr(0, slash));
  if (!base) {
    return bad("no IPv4 or IPv6 address before the /");
  }
  const bool v4 = base->IsV4() && text.substr(0, slash).find(':') == std::string_view::npos;
  const int max = v4 ? 32 : 128;
  int prefix = max;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (p.empty() || ec != std::errc() || end != p.data() + p.size() || prefix < 0 ||
        prefix > max) {
      return bad("the prefix length must be 0.." + std::to_string(max));
    }
  }
  Cidr c{*base, v4 ? prefix + 96 : prefix};
  Cidr masked = c;
  for (std::size_t i = 0; i < 16; ++i) {
    const int bits = c.prefix - static_cast<int>(i) * 8;
    const auto mask = static_cast<uint8_t>(bits >= 8 ? 0xff : bits <= 0 ? 0 : 0xff << (8 - bits));
    masked.base.bytes[i] = static_cast<uint8_t>(c.base.bytes[i] & mask);
  }
  if (!(masked.base == c.base)) {
    return bad("host bits are set under the prefix; did you mean " + masked.ToString() + "?");
  }
  return c;
}

std::optional<std::string> BlockedRange(const IpAddress& addr) {
  for (const ParsedRow& row : BlockedTable()) {
    if (row.range.Contains(addr)) {
      return row.what;
    }
  }
  if (std::optional<IpAddress> v4 = EmbeddedV4(addr)) {
    if (std::optional<std::string> inner = BlockedRange(*v4)) {
      return *inner + " (embedded as " + addr.ToString() + ")";
    }
  }
  return std::nullopt;
}

Result<std::vector<IpAddress>> HostAddresses() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) {
    return ErrnoError(errno, "getifaddrs");
  }
  std::vector<IpAddress> out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (std::optional<IpAddress> a = IpAddress::FromSockaddr(i->ifa_addr)) {
      out.push_back(*a);
    }
  }
  ::freeifaddrs(list);
  return out;
}

AddressPolicy::AddressPolicy(std::vector<Cidr> allowed, AddressLister own)
    : allowed_(std::move(allowed)), own_(std::move(own)) {}

Status AddressPolicy::Check(const IpAddress& addr) const {
  for (const Cidr& range : allowed_) {
    if (range.Contains(addr)) {
      return OkStatus();  // the operator said so
    }
  }
  constexpr std::string_view kHint = "; faasd --callback-allow CIDR admits a range";
  if (std::optional<std::string> range = BlockedRange(addr)) {
    return Status(StatusCode::kPermissionDenied,
                  addr.ToString() + " is in a blocked range: " + *range + std::string(kHint));
  }
  Result<std::vector<IpAddress>> own =
      own_ ? own_() : Result<std::vector<IpAddress>>(std::vector<IpAddress>{});
  if (!own.ok()) {
    // Fail closed: without the list, any address might be the host's own.
    return UnavailableError("cannot list this host's addresses: " + own.status().message());
  }
  for (const IpAddress& mine : *own) {
    if (mine == addr) {
      return Status(StatusCode::kPermissionDenied,
                    addr.ToString() + " is an address of this host" + std::string(kHint));
    }
  }
  return OkStatus();
}

Result<std::vector<SocketAddress>> AddressPolicy::Resolve(const std::string& host,
                                                          uint16_t port) const {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res); rc != 0) {
    std::string why = rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc);
    if (rc == EAI_NONAME || rc == EAI_NODATA || rc == EAI_FAIL || rc == EAI_FAMILY) {
      return NotFoundError("host \"" + host + "\" does not resolve: " + why);
    }
    return UnavailableError("cannot resolve \"" + host + "\" now: " + why);
  }
  std::vector<SocketAddress> out;
  Status refused = OkStatus();
  for (addrinfo* ai = res; ai != nullptr && refused.ok(); ai = ai->ai_next) {
    std::optional<IpAddress> ip = IpAddress::FromSockaddr(ai->ai_addr);
    if (!ip || ai->ai_addrlen > sizeof(sockaddr_storage)) {
      continue;
    }
    refused = Check(*ip);
    SocketAddress sa;
    std::memcpy(&sa.storage, ai->ai_addr, ai->ai_addrlen);
    sa.len = ai->ai_addrlen;
    if (sa.storage.ss_family == AF_INET) {
      reinterpret_cast<sockaddr_in*>(&sa.storage)->sin_port = htons(port);
    } else {
      reinterpret_cast<sockaddr_in6*>(&sa.storage)->sin6_port = htons(port);
    }
    out.push_back(sa);
  }
  ::freeaddrinfo(res);
  if (!refused.ok()) {
    return Status(refused.code(), "callback host \"" + host + "\": " + refused.message());
  }
  if (out.empty()) {
    return NotFoundError("host \"" + host + "\" has no IPv4 or IPv6 address");
  }
  return out;
}

}  // namespace faas::gateway
