#include "faas/gateway/address_policy.h"

#include <netdb.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace faas::gateway {

AddressPolicy::AddressPolicy(std::vector<Cidr> allowed, AddressLister own)
    : allowed_(std::move(allowed)), own_(std::move(own)) {}

Status AddressPolicy::Check(const IpAddress& addr) const {
  for (const Cidr& range : allowed_) {
    if (range.Contains(addr)) {
      return OkStatus();  // the operator said so
    }
  }
  constexpr std::string_view kHint = "; faasd --callback-allow CIDR admits a range";
  if (std::optional<std::string> range = ReservedRangeOf(addr)) {
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
