// The egress policy of an outbound function: which IPv4 networks its namespace refuses
// (docs/design/0007-outbound-network.md). Computed by faasd, installed by the worker (network.cc).
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

#include "faas/sandbox/network.h"

namespace faas::sandbox {
namespace {

uint32_t Mask(int prefix) { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }

// Never reachable through slirp unless allowed: the host itself, its networks and the cloud's.
constexpr const char* kDeniedNetworks[] = {
    "0.0.0.0/8",       // "this network"
    "10.0.0.0/8",      // private (also slirp's own 10.0.2.0/24: its gateway and DNS address)
    "100.64.0.0/10",   // shared address space (carrier-grade NAT, some clouds' internals)
    "127.0.0.0/8",     // loopback (the namespace's own `lo` answers first; belt and braces)
    "169.254.0.0/16",  // link-local: cloud metadata at 169.254.169.254
    "172.16.0.0/12",   // private
    "192.168.0.0/16",  // private
    "224.0.0.0/4",     // multicast
    "240.0.0.0/4",     // reserved, and the limited broadcast 255.255.255.255
};

}  // namespace

std::string Cidr::ToString() const {
  in_addr a{htonl(addr)};
  char buf[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(prefix);
}

bool Cidr::Contains(const Cidr& other) const {
  return other.prefix >= prefix && (other.addr & Mask(prefix)) == addr;
}

Result<Cidr> ParseCidr(std::string_view text) {
  std::string_view ip = text.substr(0, text.find('/'));
  Cidr c;
  if (ip.size() < text.size()) {
    std::string_view p = text.substr(ip.size() + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), c.prefix);
    if (ec != std::errc() || end != p.data() + p.size() || c.prefix < 0 || c.prefix > 32) {
      return InvalidArgumentError("\"" + std::string(text) + "\": the prefix must be 0 to 32");
    }
  }
  in_addr a{};
  if (::inet_pton(AF_INET, std::string(ip).c_str(), &a) != 1) {
    return InvalidArgumentError("\"" + std::string(text) +
                                "\" is not an IPv4 network (IPv6 is off for functions)");
  }
  c.addr = ntohl(a.s_addr);
  if ((c.addr & ~Mask(c.prefix)) != 0) {
    return InvalidArgumentError("\"" + std::string(text) + "\" has host bits set after /" +
                                std::to_string(c.prefix));
  }
  return c;
}

Result<std::vector<Cidr>> HostAddresses() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) {
    return ErrnoError(errno, "getifaddrs");
  }
  std::vector<Cidr> out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr != nullptr && i->ifa_addr->sa_family == AF_INET) {
      out.push_back({ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr), 32});
    }
  }
  ::freeifaddrs(list);
  return out;
}

std::vector<Cidr> DeniedNetworks(const std::vector<Cidr>& host, const std::vector<Cidr>& allow) {
  auto allowed = [&](const Cidr& c) {
    for (const Cidr& a : allow) {
      if (a.Contains(c)) {
        return true;
      }
    }
    return false;
  };
  std::vector<Cidr> out;
  auto add = [&](const Cidr& c) {
    if (!allowed(c) && std::find(out.begin(), out.end(), c) == out.end()) {
      out.push_back(c);
    }
  };
  for (const char* n : kDeniedNetworks) {
    add(*ParseCidr(n));
  }
  // Every address of the host, public ones too (slirp connects from the host, so a public
  // address of the host is the host). One inside an allowed network is reachable: the operator
  // said so.
  for (const Cidr& h : host) {
    add(h);
  }
  return out;
}

std::vector<std::string> EgressWorkerArgs(const EgressPolicy& policy,
                                          const std::vector<Cidr>& host) {
  std::vector<std::string> args;
  for (const Cidr& c : DeniedNetworks(host, policy.allow)) {
    args.insert(args.end(), {"--egress-deny", c.ToString()});
  }
  for (const Cidr& c : policy.allow) {
    args.insert(args.end(), {"--egress-allow", c.ToString()});
  }
  return args;
}

std::string FindSlirp4netns() {
  for (const char* p : {"/usr/bin/slirp4netns", "/usr/local/bin/slirp4netns", "/bin/slirp4netns"}) {
    if (::access(p, X_OK) == 0) {
      return p;
    }
  }
  return "";
}

}  // namespace faas::sandbox
