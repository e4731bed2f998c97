// Where faasd itself may connect on a caller's behalf (async callbacks, X-Callback-Url).
//
// faasd runs as root on the host network, so a URL a caller hands it must not reach the host's
// loopback, the host's own interface addresses, link-local addresses (cloud metadata at
// 169.254.169.254), private, CGNAT, unspecified, multicast or broadcast ranges, in any spelling
// getaddrinfo(3) accepts (0x7f000001, 2130706433, 0177.0.0.1, 127.1, ::ffff:127.0.0.1,
// "localhost"), unless the operator allows a range (faasd --callback-allow CIDR).
//
//   FAAS_ASSIGN_OR_RETURN(Cidr lo, ParseCidr("127.0.0.0/8"));
//   AddressPolicy policy({lo});
//   FAAS_ASSIGN_OR_RETURN(std::vector<SocketAddress> to, policy.Resolve("hooks.example", 80));
//   ::connect(fd, to[0].Get(), to[0].len);  // only an address that was checked: no second lookup
//
// Check at accept time and again at connect time (DNS may answer differently later).
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "faas/base/status.h"

namespace faas::gateway {

// One IP address of either family, in one form: IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d), so a
// mapped spelling of an address is the same address.
struct IpAddress {
  std::array<uint8_t, 16> bytes{};

  // nullopt for families other than AF_INET and AF_INET6.
  static std::optional<IpAddress> FromSockaddr(const sockaddr* sa);
  // Numeric only ("10.0.0.1", "::1", "::ffff:10.0.0.1"); nullopt otherwise.
  static std::optional<IpAddress> Parse(std::string_view text);
  bool IsV4() const;             // an IPv4-mapped address
  std::string ToString() const;  // "127.0.0.1", "::1"
  bool operator==(const IpAddress&) const = default;
};

// An address range. IPv4 ranges are kept in the mapped form: 10.0.0.0/8 is ::ffff:10.0.0.0/104.
struct Cidr {
  IpAddress base;  // host bits zero
  int prefix = 0;  // bits of `base` that must match, 0..128 in the IPv6 form
  bool Contains(const IpAddress& addr) const;
  std::string ToString() const;  // "10.0.0.0/8", "fc00::/7"
};

// "10.0.0.0/8", "fd00::/8", "::ffff:127.0.0.0/104", or one address ("127.0.0.1" = /32, "::1" =
// /128). InvalidArgument (with the text) for anything else, including host bits set under the
// prefix ("10.0.0.1/8": say 10.0.0.0/8).
Result<Cidr> ParseCidr(std::string_view text);

// The blocked range `addr` falls in, as "loopback 127.0.0.0/8"; nullopt when it is in none. One
// table, one unit test per row.
std::optional<std::string> BlockedRange(const IpAddress& addr);

// The host's own interface addresses (getifaddrs(3)).
Result<std::vector<IpAddress>> HostAddresses();

// A resolved socket address, ready for connect(2).
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t len = 0;
  const sockaddr* Get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

// Immutable after construction; thread-safe.
class AddressPolicy {
 public:
  using AddressLister = std::function<Result<std::vector<IpAddress>>()>;
  // `allowed` ranges pass even when blocked. `own` lists the host's own addresses, asked at every
  // check (interfaces come and go; callbacks are rare): HostAddresses by default, a fake in tests.
  explicit AddressPolicy(std::vector<Cidr> allowed = {}, AddressLister own = HostAddresses);

  // OK, or PermissionDenied naming the address and why ("127.0.0.1 is in a blocked range:
  // loopback 127.0.0.0/8; faasd --callback-allow CIDR admits a range").
  Status Check(const IpAddress& addr) const;

  // Resolves `host` once (getaddrinfo, numeric forms as it accepts them) and checks every
  // address it returns: all must pass (a name that also resolves to a blocked address is refused).
  // Returns them with `port` set. PermissionDenied (blocked), NotFound (no such host),
  // Unavailable (the resolver failed for now).
  Result<std::vector<SocketAddress>> Resolve(const std::string& host, uint16_t port) const;

  const std::vector<Cidr>& allowed() const { return allowed_; }

 private:
  std::vector<Cidr> allowed_;
  AddressLister own_;
};

}  // namespace faas::gateway
