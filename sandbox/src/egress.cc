// The egress policy of an outbound function: which IPv4 networks its namespace refuses
// (docs/design/0007-outbound-network.md). Computed by faasd, installed by the worker (network.cc).
// The ranges themselves are the one reserved table of faas/base/ip_range.h.
#include <unistd.h>

#include <algorithm>

#include "faas/sandbox/network.h"

namespace faas::sandbox {

Result<Cidr> ParseEgressNetwork(std::string_view text) {
  FAAS_ASSIGN_OR_RETURN(Cidr c, ParseCidr(text));
  if (!c.IsV4()) {
    return InvalidArgumentError("\"" + std::string(text) +
                                "\" is not an IPv4 network (IPv6 is off for functions)");
  }
  return c;
}

std::vector<Cidr> DeniedNetworks(const std::vector<IpAddress>& host,
                                 const std::vector<Cidr>& allow) {
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
  // Never reachable through slirp unless allowed: the host itself, its networks and the cloud's.
  // 10.0.0.0/8 holds slirp's own 10.0.2.0/24; network.cc routes its gateway 10.0.2.2/32 before
  // these prohibit routes, and the more specific route wins.
  for (const ReservedRange& r : ReservedRanges()) {
    if (r.range.IsV4()) {
      add(r.range);
    }
  }
  // Every address of the host, public ones too (slirp connects from the host, so a public
  // address of the host is the host). One inside an allowed network is reachable: the operator
  // said so.
  for (const IpAddress& h : host) {
    if (h.IsV4()) {
      add(Cidr{h, 128});
    }
  }
  return out;
}

std::vector<std::string> EgressWorkerArgs(const EgressPolicy& policy,
                                          const std::vector<IpAddress>& host) {
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
