#include "faas/base/ip_range.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace faas {
namespace {

// ::ffff:0:0/96, the IPv4-mapped prefix every IPv4 address is kept under.
constexpr std::array<uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

IpAddress FromV4Bytes(const uint8_t* four) {
  IpAddress a;
  std::memcpy(a.bytes.data(), kMappedPrefix.data(), kMappedPrefix.size());
  std::memcpy(a.bytes.data() + 12, four, 4);
  return a;
}

// What nothing faasd starts may reach unless an operator allows it. The union of what the
// callback policy (gateway) and the egress policy (sandbox) each refused before they shared it.
struct Row {
  const char* name;
  const char* cidr;
};
constexpr Row kReserved[] = {
    {"unspecified (\"this host\")", "0.0.0.0/8"},  // "this network"
    // Also slirp's own 10.0.2.0/24 (its gateway 10.0.2.2 and DNS 10.0.2.3): an outbound worker
    // routes 10.0.2.2/32 itself, more specific than this row.
    {"private", "10.0.0.0/8"},
    {"shared address space (CGNAT)", "100.64.0.0/10"},  // carrier-grade NAT, some clouds' internals
    {"loopback", "127.0.0.0/8"},
    {"link-local (cloud metadata)", "169.254.0.0/16"},  // metadata at 169.254.169.254
    {"private", "172.16.0.0/12"},
    {"IETF protocol assignments", "192.0.0.0/24"},
    {"private", "192.168.0.0/16"},
    {"benchmarking", "198.18.0.0/15"},
    {"multicast", "224.0.0.0/4"},
    {"reserved and broadcast", "240.0.0.0/4"},  // with the limited broadcast 255.255.255.255
    {"unspecified", "::/128"},
    {"loopback", "::1/128"},
    {"IPv4-compatible (deprecated)", "::/96"},
    {"NAT64 local use", "64:ff9b:1::/48"},
    {"unique local (private)", "fc00::/7"},
    {"link-local", "fe80::/10"},
    {"site-local (deprecated)", "fec0::/10"},
    {"multicast", "ff00::/8"},
};

// IPv6 forms that carry an IPv4 address a translator or relay would reach: NAT64
// (64:ff9b::/96, RFC 6052) and 6to4 (2002::/16, RFC 3056).
std::optional<IpAddress> EmbeddedV4(const IpAddress& a) {
  static const Cidr nat64 = *ParseCidr("64:ff9b::/96");
  static const Cidr six_to_four = *ParseCidr("2002::/16");
  if (nat64.Contains(a)) {
    return FromV4Bytes(a.bytes.data() + 12);
  }
  if (six_to_four.Contains(a)) {
    return FromV4Bytes(a.bytes.data() + 2);
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
    return FromV4Bytes(reinterpret_cast<const uint8_t*>(&in->sin_addr.s_addr));
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
    return FromV4Bytes(buf);
  }
  if (::inet_pton(AF_INET6, s.c_str(), buf) == 1) {
    IpAddress a;
    std::memcpy(a.bytes.data(), buf, 16);
    return a;
  }
  return std::nullopt;
}

IpAddress IpAddress::FromV4(uint32_t v4) {
  const uint32_t net = htonl(v4);
  return FromV4Bytes(reinterpret_cast<const uint8_t*>(&net));
}

bool IpAddress::IsV4() const {
  return std::memcmp(bytes.data(), kMappedPrefix.data(), kMappedPrefix.size()) == 0;
}

uint32_t IpAddress::V4() const {
  uint32_t net = 0;
  std::memcpy(&net, bytes.data() + 12, 4);
  return ntohl(net);
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

bool Cidr::Contains(const Cidr& other) const {
  return other.prefix >= prefix && Contains(other.base);
}

bool Cidr::IsV4() const {
  return base.IsV4() && prefix >= 96;
}

int Cidr::PrefixLength() const {
  return IsV4() ? prefix - 96 : prefix;
}

std::string Cidr::ToString() const {
  return base.ToString() + "/" + std::to_string(PrefixLength());
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

std::string ReservedRange::ToString() const {
  return std::string(name) + " " + range.ToString();
}

const std::vector<ReservedRange>& ReservedRanges() {
  static const std::vector<ReservedRange> table = [] {
    std::vector<ReservedRange> out;
    for (const Row& row : kReserved) {
      Result<Cidr> c = ParseCidr(row.cidr);
      FAAS_CHECK(c.ok());  // the table is ours, and its unit test parses every row
      out.push_back({row.name, *c});
    }
    return out;
  }();
  return table;
}

std::optional<std::string> ReservedRangeOf(const IpAddress& addr) {
  for (const ReservedRange& row : ReservedRanges()) {
    if (row.range.Contains(addr)) {
      return row.ToString();
    }
  }
  if (std::optional<IpAddress> v4 = EmbeddedV4(addr)) {
    if (std::optional<std::string> inner = ReservedRangeOf(*v4)) {
      return *inner + " (embedded as " + addr.ToString() + ")";
    }
  }
  return std::nullopt;
}

}  // namespace faas
