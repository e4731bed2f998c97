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
// Check at accept time and again at connect time (DNS may answer differently later). The ranges
// and the address types are faas/base/ip_range.h's, shared with the sandbox's egress policy.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "faas/base/ip_range.h"
#include "faas/base/status.h"

namespace faas::gateway {

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
  // loopback 127.0.0.0/8; faasd --callback-allow CIDR admits a range"): every row of
  // ReservedRanges() (IPv4 inside NAT64/6to4 included), then the host's own addresses.
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
