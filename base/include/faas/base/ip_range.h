// IP addresses, CIDR ranges, this host's own addresses, and the one table of the ranges nothing
// faasd starts may reach by default (security issue #13). Two policies build on it:
//   - gateway/address_policy.h: where faasd itself may connect for an async callback (both
//     families; every row, and IPv4 carried inside NAT64/6to4 addresses);
//   - sandbox/network.h: what an outbound function's namespace refuses (IPv4 rows only: IPv6 is
//     off there).
//
//   FAAS_ASSIGN_OR_RETURN(Cidr lo, ParseCidr("127.0.0.0/8"));
//   std::optional<IpAddress> a = IpAddress::Parse("::ffff:127.0.0.1");
//   lo.Contains(*a);            // true: a mapped spelling is the same address
//   ReservedRangeOf(*a);        // "loopback 127.0.0.0/8"
//
// Everything here is pure (HostAddresses reads the interfaces) and thread-safe.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "faas/base/status.h"

namespace faas {

// One IP address of either family, in one form: IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d), so a
// mapped spelling of an address is the same address.
struct IpAddress {
  std::array<uint8_t, 16> bytes{};

  // nullopt for families other than AF_INET and AF_INET6.
  static std::optional<IpAddress> FromSockaddr(const sockaddr* sa);
  // Numeric only ("10.0.0.1", "::1", "::ffff:10.0.0.1"); nullopt otherwise.
  static std::optional<IpAddress> Parse(std::string_view text);
  // An IPv4 address given in host byte order (0x0a000001 = 10.0.0.1).
  static IpAddress FromV4(uint32_t v4);
  bool IsV4() const;             // an IPv4-mapped address
  uint32_t V4() const;           // the IPv4 address in host byte order; only when IsV4()
  std::string ToString() const;  // "127.0.0.1", "::1"
  bool operator==(const IpAddress&) const = default;
};

// An address range. IPv4 ranges are kept in the mapped form: 10.0.0.0/8 is ::ffff:10.0.0.0/104.
struct Cidr {
  IpAddress base;  // host bits zero
  int prefix = 0;  // bits of `base` that must match, 0..128 in the IPv6 form
  bool Contains(const IpAddress& addr) const;
  bool Contains(const Cidr& other) const;  // `other` lies wholly inside this range
  bool IsV4() const;                       // an IPv4 range (inside ::ffff:0:0/96)
  int PrefixLength() const;                // as written: 8 for 10.0.0.0/8, 7 for fc00::/7
  std::string ToString() const;            // "10.0.0.0/8", "fc00::/7", "192.0.2.7/32"
  bool operator==(const Cidr&) const = default;
};

// "10.0.0.0/8", "fd00::/8", "::ffff:127.0.0.0/104", or one address ("127.0.0.1" = /32, "::1" =
// /128). InvalidArgument (with the text) for anything else, including host bits set under the
// prefix ("10.0.0.1/8": say 10.0.0.0/8).
Result<Cidr> ParseCidr(std::string_view text);

// The host's own interface addresses, both families (getifaddrs(3)), read now.
Result<std::vector<IpAddress>> HostAddresses();

// One row of the reserved table: a name for people ("loopback") and the range.
struct ReservedRange {
  std::string_view name;
  Cidr range;
  std::string ToString() const;  // "loopback 127.0.0.0/8"
};

// The ranges nothing may reach by default (IANA special-purpose registries, RFC 6890):
// unspecified, loopback, link-local, private, CGNAT, IETF protocol assignments, benchmarking,
// multicast, reserved and broadcast, and their IPv6 counterparts. IPv4 rows first. One table,
// one unit test per row (tests/unit/base/ip_range_test.cc). A host's own addresses are not in it:
// callers ask HostAddresses() when they check.
const std::vector<ReservedRange>& ReservedRanges();

// The row `addr` falls in, as "loopback 127.0.0.0/8", or nullopt. An IPv4 address carried inside
// an IPv6 one that a translator or relay would reach (NAT64 64:ff9b::/96, RFC 6052; 6to4
// 2002::/16, RFC 3056) counts as that IPv4 address: "loopback 127.0.0.0/8 (embedded as
// 64:ff9b::7f00:1)".
std::optional<std::string> ReservedRangeOf(const IpAddress& addr);

}  // namespace faas
